/*
 * store.h - PostgreSQL storage: the only room that touches libpq.
 *
 * A struct store is one connection. The pool lends connections to calls (store_pool_acquire) and
 * takes them back; a lost connection is re-established when it is lent again. Every function
 * returns 0 or a negative COF_E* code and fills the caller's struct cof_err: `msg` is safe for
 * clients, `detail` (SQL errors, SQLSTATE) is for the log.
 *
 * Writes run inside store_tx, which owns the transaction and its retry loop: the body locks the
 * project row (store_project_lock) and raises the revision (store_project_set_revision); the
 * call's audit row, when given, is inserted in the same transaction. Values cross this border only
 * as sealed blobs. Numbers with a meaning (version, visibility, role) are the domain's
 * (server/domain/model.h) and are stored as they are given.
 */
#ifndef COFFER_STORE_H
#define COFFER_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "coffer_limits.h"
#include "errors.h"

struct store;
struct store_pool;

/* ---- connections ---- */

/* Every connection gets bounds of ours unless its URL sets them (connect_timeout 3 s, TCP
 * keepalives, tcp_user_timeout 10 s), and of a multi-host URL the host that answered last is
 * tried first. Every statement is bounded on this side too: by the call's deadline
 * (store_call_begin), else by 60 s; one that gets no answer in time drops its connection, which
 * is made again on next use. */

/* Whether url parses as a libpq connection string; why not into why. */
bool store_url_valid(const char *url, char *why, size_t cap);
/* While *flag is set (NULL: never), every wait of s for the database ends at once and nothing more
 * is sent (COF_EUNAVAIL): the server stops whatever the database does. */
void store_set_abort(struct store *s, const atomic_bool *flag);
/* Every connection made so far is given up: statements waiting on one end now (COF_EUNAVAIL, or
 * COF_EUNKNOWN for a COMMIT) and each is made again on next use. For a server that stopped
 * answering: the next connection goes to whichever host of the URL answers. */
void store_abandon_all(void);
/* Whether the last commit that ended did so without an answer in time (a synchronous standby
 * away, a primary that hangs), with no commit confirmed since. */
bool store_writes_stalled(void);

/* Connects (url: libpq keywords or URI). A connection that fails now is kept and retried by
 * store_call_begin, so *out is set whenever memory allows; the return value says whether the
 * database answered. */
int store_open(const char *url, struct store **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Closes a connection. NULL-safe. */
void store_close(struct store *s);
/* Prepares the connection for one call: reconnects if it was lost and bounds the call's
 * statements, together, by timeout_ms from now (a statement still unanswered then is abandoned:
 * COF_EDEADLINE, or COF_EUNKNOWN for a COMMIT; one not sent by then is not sent). */
int store_call_begin(struct store *s, int64_t timeout_ms, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Bounds the statements from now on by timeout_ms from now (0: 60 s each). */
void store_set_deadline(struct store *s, int64_t timeout_ms);
/* SELECT 1: is the database reachable now? */
bool store_ping(struct store *s);

/* A one-row write of replica's own (write_probes), bounded by timeout_ms: whether its commit was
 * confirmed (which ends store_writes_stalled). */
bool store_write_probe(struct store *s, const char *replica, int64_t timeout_ms);

/* ---- notifications ---- */

/* A connection of its own (connect timeout 5 s, TCP keepalives) that LISTENs on channel. */
int store_listen(const char *url, const char *channel, struct store **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Waits up to timeout_ms for notifications and hands each payload to fn, in commit order. 0, or
 * COF_EUNAVAIL when the connection is lost (close it and listen again). */
int store_listen_wait(struct store *s, int timeout_ms, void (*fn)(void *arg, const char *payload),
                      void *arg, struct cof_err *e) __attribute__((warn_unused_result));
/* SELECT 1 on a listening connection within 2 s (never reconnects: that would drop the LISTEN).
 * 0; COF_EDEADLINE without an answer in time (the connection is dropped); COF_EUNAVAIL when the
 * connection is lost. */
int store_listen_ping(struct store *s, struct cof_err *e) __attribute__((warn_unused_result));

/* Which history the server is on: after a failover the timeline moves; a restored backup is
 * another cluster. */
struct store_identity {
	int64_t timeline;   /* the timeline new WAL is written on */
	char system_id[32]; /* pg_control_system()'s identifier; "" when this role may not read it
	                     */
};
int store_identity(struct store *s, struct store_identity *out, struct cof_err *e)
        __attribute__((warn_unused_result));

/* A pool of `size` connections to url, opened on first use, each given abort (store_set_abort). */
int store_pool_new(const char *url, int size, const atomic_bool *abort, struct store_pool **out,
                   struct cof_err *e) __attribute__((warn_unused_result));
/* Closes every connection. Every lent one must be back. NULL-safe. */
void store_pool_free(struct store_pool *p);
/* Lends a connection ready for one call (store_call_begin with timeout_ms), waiting up to
 * timeout_ms for one to be free. COF_EUNAVAIL when none is free in time or the database does not
 * answer; the connection is back in the pool then. */
int store_pool_acquire(struct store_pool *p, int64_t timeout_ms, struct store **out,
                       struct cof_err *e) __attribute__((warn_unused_result));
/* Takes a lent connection back (rolling back anything left open). NULL-safe. */
void store_pool_release(struct store_pool *p, struct store *s);
/* Connections by their last known state (never used yet: neither). */
void store_pool_states(struct store_pool *p, int *up, int *down);

/* ---- transactions ---- */

enum store_tx_mode {
	STORE_TX_WRITE,    /* READ COMMITTED; the body takes the project row lock */
	STORE_TX_SNAPSHOT, /* REPEATABLE READ READ ONLY: every read sees one snapshot */
};

/* The body of a transaction: 0 commits; STORE_TX_DISCARD rolls back and counts as success (a dry
 * run, a write with nothing to write); a COF_E* code rolls back and fails. It may run more than
 * once (see store_tx), so it must set its outputs afresh each time. */
typedef int (*store_tx_fn)(struct store *s, void *arg, struct cof_err *e);
#define STORE_TX_DISCARD 1
/* Attempts of a transaction that fails with a serialization failure or deadlock. */
#define STORE_TX_ATTEMPTS 3

/* Runs fn in one transaction, again after a serialization failure or deadlock (up to
 * STORE_TX_ATTEMPTS times; then COF_ERETRY). When audit is not NULL its row is inserted in the same
 * transaction just before COMMIT, with the revision the body wrote (store_project_set_revision),
 * and audit->committed tells whether it was stored. A failed audit insert fails the transaction
 * with COF_EUNAVAIL. */
int store_tx(struct store *s, enum store_tx_mode mode, store_tx_fn fn, void *arg,
             struct audit_row *audit, struct cof_err *e) __attribute__((warn_unused_result));

/* What the last committed transaction changed, for the caches of this replica (every replica
 * also hears it through the notifications the database publishes). */
struct store_changes {
	int64_t project_id; /* a project whose revision moved (0: none) */
	int64_t revision;   /* to this revision; -1: the project was deleted */
	char token_id[32];  /* a token revoked ("" none) */
};
void store_last_changes(struct store *s, struct store_changes *out);

/* ---- schema ---- */

/* Applies pending migrations (store_migrate.c), each in its own transaction. *applied counts the
 * new ones. */
int store_migrate(struct store *s, int *applied, struct cof_err *e)
        __attribute__((warn_unused_result));
/* The highest applied migration (0 on an empty database) and the highest this build knows. */
int store_schema_version(struct store *s, int *applied, int *known, struct cof_err *e)
        __attribute__((warn_unused_result));

/* ---- projects (store_projects.c) ---- */

struct store_project {
	int64_t id;                              /* projects.id */
	char name[LIMIT_NAME_BUF];               /* unique name */
	char description[LIMIT_DESCRIPTION_BUF]; /* free text */
	int64_t revision;                        /* current revision */
	int64_t create_us;                       /* microseconds since the epoch */
};

/* In a write transaction: inserts the project at revision 1 with its environment `main`;
 * COF_EEXIST when the name is taken. */
int store_project_insert(struct store *s, const char *name, const char *description,
                         struct store_project *out, struct cof_err *e)
        __attribute__((warn_unused_result));
int store_project_get(struct store *s, const char *name, struct store_project *out,
                      struct cof_err *e) __attribute__((warn_unused_result));
/* Up to `limit` projects with name > after, by name; *n is how many were filled. */
int store_project_list(struct store *s, const char *after, int limit, struct store_project *out,
                       int *n, struct cof_err *e) __attribute__((warn_unused_result));
/* In a write transaction: removes the project and everything in it; `revision` (its last) is
 * recorded in the transaction's audit row. */
int store_project_delete(struct store *s, int64_t id, int64_t revision, struct cof_err *e)
        __attribute__((warn_unused_result));
/* In a transaction: locks the project row; fills id and current revision. */
int store_project_lock(struct store *s, const char *name, int64_t *id, int64_t *revision,
                       struct cof_err *e) __attribute__((warn_unused_result));
/* What a project holds now. */
struct store_usage {
	int64_t secrets;      /* current secrets */
	int64_t environments; /* current environments */
	int64_t values;       /* current value rows (defaults and overrides) */
	int64_t sealed_bytes; /* their sealed size */
};
int store_project_usage(struct store *s, int64_t id, struct store_usage *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Raises the project's revision; the transaction's audit row records it. */
int store_project_set_revision(struct store *s, int64_t id, int64_t revision, struct cof_err *e)
        __attribute__((warn_unused_result));

/* ---- secrets and values (store_projects.c) ---- */

struct store_secret {
	int64_t id;                              /* secrets.id */
	int64_t project_id;                      /* owner */
	char name[LIMIT_NAME_BUF];               /* unique among current secrets of the project */
	int visibility;                          /* enum visibility */
	char description[LIMIT_DESCRIPTION_BUF]; /* free text */
	int64_t revision;                        /* last change */
	int64_t create_us;                       /* creation time */
	int64_t update_us;                       /* last change time */
};

/* A sealed value row. */
struct store_value {
	int64_t valid_from; /* revision that wrote it */
	int32_t term;       /* keyring term */
	uint8_t *sealed;    /* malloc'd blob; free with store_value_clear */
	size_t sealed_len;  /* bytes in sealed */
};

/* The current secret `name` of `project` (NOT_FOUND names which is missing). */
int store_secret_get(struct store *s, const char *project, const char *name,
                     struct store_secret *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* In a transaction: the current secret or COF_ENOTFOUND. */
int store_secret_find(struct store *s, int64_t project_id, const char *name,
                      struct store_secret *out, struct cof_err *e)
        __attribute__((warn_unused_result));
int store_secret_list(struct store *s, const char *project, const char *after, int limit,
                      struct store_secret *out, int *n, struct cof_err *e)
        __attribute__((warn_unused_result));
int store_secret_insert(struct store *s, int64_t project_id, const char *name, int visibility,
                        const char *description, int64_t revision, struct store_secret *out,
                        struct cof_err *e) __attribute__((warn_unused_result));
int store_secret_update(struct store *s, int64_t secret_id, int visibility, const char *description,
                        int64_t revision, struct store_secret *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* The names of the project's secrets changed after revision `after` (created, updated, deleted),
 * into a malloc'd array of malloc'd strings (free with store_names_free). */
int store_secrets_touched(struct store *s, int64_t project_id, int64_t after, char ***names,
                          size_t *n, struct cof_err *e) __attribute__((warn_unused_result));
void store_names_free(char **names, size_t n);
/* Marks the secret deleted at `revision` and ends every current value of it (its overrides too). */
int store_secret_delete(struct store *s, int64_t secret_id, int64_t revision, struct cof_err *e)
        __attribute__((warn_unused_result));

/* One value row of a set-based write (store_values_replace). */
struct store_value_write {
	int64_t secret_id;     /* the secret */
	int version;           /* enum version: draft or live */
	const uint8_t *sealed; /* the new sealed value; NULL: only end the current one */
	size_t sealed_len;     /* bytes in sealed */
	int32_t term;          /* keyring term sealed under */
	int64_t origin_id;     /* the row it was copied from; 0: written directly */
};
/* In a write transaction: for every entry of w[0..n), ends the current value of (secret,
 * environment_id, version) at `revision` and, when it has one, stores its new value from then.
 * Two statements whatever n is (an UPDATE and a COPY). */
int store_values_replace(struct store *s, int64_t environment_id, int64_t revision,
                         const struct store_value_write *w, size_t n, struct cof_err *e)
        __attribute__((warn_unused_result));

/* Values. environment_id 0 with version 0 is the project default. put ends the current row for
 * (secret, environment, version) at `revision` and inserts the new one valid from `revision`;
 * origin_id is the value row it was copied from (a merge), 0 for a value written directly. */
int store_value_put(struct store *s, int64_t secret_id, int64_t environment_id, int version,
                    int64_t revision, int32_t term, const uint8_t *sealed, size_t len,
                    int64_t origin_id, struct cof_err *e) __attribute__((warn_unused_result));
/* The current value row; COF_ENOTFOUND when there is none. */
int store_value_current(struct store *s, int64_t secret_id, int64_t environment_id, int version,
                        struct store_value *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Ends the current row of (secret, environment, version) at `revision`; COF_ENOTFOUND if none. */
int store_value_end(struct store *s, int64_t secret_id, int64_t environment_id, int version,
                    int64_t revision, struct cof_err *e) __attribute__((warn_unused_result));
/* Frees a value's blob. NULL-safe. */
void store_value_clear(struct store_value *v);

/* ---- environments and overrides (store_envs.c) ---- */

struct store_environment {
	int64_t id;                /* environments.id */
	int64_t project_id;        /* owner */
	char name[LIMIT_NAME_BUF]; /* unique among current environments of the project */
	char description[LIMIT_DESCRIPTION_BUF]; /* free text */
	int64_t revision;                        /* last change, overrides included */
	int64_t create_us;                       /* creation time */
};

struct store_override {
	char secret[LIMIT_NAME_BUF]; /* secret name */
	int version;                 /* enum version: draft or live */
	int64_t revision;            /* the revision that set it */
	int64_t update_us;           /* when */
};

/* A sealed value with its identity: what merge, resolve and key maintenance read. */
struct store_sealed {
	int64_t secret_id;           /* secrets.id */
	char secret[LIMIT_NAME_BUF]; /* its name */
	int visibility;              /* its visibility now */
	int64_t environment_id;      /* 0: the project default */
	int version;                 /* 0 default, else the override's enum version */
	int64_t valid_from;          /* the revision that wrote it */
	uint8_t *sealed;             /* malloc'd blob */
	size_t sealed_len;           /* bytes in sealed */
	int64_t row_id;              /* secret_values.id (merge, key maintenance) */
	int64_t origin_id;           /* the row it was copied from, 0: written directly (merge) */
	int64_t project_id;          /* owner (key maintenance only) */
	int32_t term;                /* keyring term (key maintenance only) */
};
/* Frees rows[0..n) and the array. NULL-safe. */
void store_sealed_free(struct store_sealed *rows, size_t n);

/* The current environment `name` of `project`; NOT_FOUND names which is missing. */
int store_environment_get(struct store *s, const char *project, const char *name,
                          struct store_environment *out, struct cof_err *e)
        __attribute__((warn_unused_result));
int store_environment_list(struct store *s, const char *project, const char *after, int limit,
                           struct store_environment *out, int *n, struct cof_err *e)
        __attribute__((warn_unused_result));
/* In a transaction: the current environment `name` of the project, or COF_ENOTFOUND. */
int store_environment_find(struct store *s, int64_t project_id, const char *name,
                           struct store_environment *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* The id of the environment `name` as it was at revision `at`, or COF_ENOTFOUND. */
int store_environment_at(struct store *s, int64_t project_id, const char *name, int64_t at,
                         int64_t *id, struct cof_err *e) __attribute__((warn_unused_result));
int store_environment_insert(struct store *s, int64_t project_id, const char *name,
                             const char *description, int64_t revision,
                             struct store_environment *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Marks it deleted at `revision` and ends its overrides. */
int store_environment_delete(struct store *s, int64_t environment_id, int64_t revision,
                             struct cof_err *e) __attribute__((warn_unused_result));
int store_environment_set_revision(struct store *s, int64_t environment_id, int64_t revision,
                                   struct cof_err *e) __attribute__((warn_unused_result));

/* Overrides of an environment of a project, by (secret name, version) after (after_secret,
 * after_version); version 0 lists both. NOT_FOUND names a missing project or environment. */
int store_override_list(struct store *s, const char *project, const char *environment, int version,
                        const char *after_secret, int after_version, int limit,
                        struct store_override *out, int *n, struct cof_err *e)
        __attribute__((warn_unused_result));
/* In a transaction: every current override of an environment (both versions), by name, version,
 * with row_id and origin_id. */
int store_override_rows(struct store *s, int64_t environment_id, struct store_sealed **rows,
                        size_t *n, struct cof_err *e) __attribute__((warn_unused_result));
/* The candidates of a resolve at revision `at` in (environment, version): for every secret that
 * existed then, its default row and, when it had one, its override row, by name (C collation),
 * the default first. current: `at` is the project's revision in this snapshot (the current rows
 * are read, without touching history). */
/* Their SQL, for the tests' EXPLAIN: $1 project, $2 environment, $3 version (, $4 revision). */
extern const char store_sql_resolve_current[];
extern const char store_sql_resolve_at[];
int store_resolve_rows(struct store *s, int64_t project_id, int64_t environment_id, int version,
                       int64_t at, bool current, struct store_sealed **rows, size_t *n,
                       struct cof_err *e) __attribute__((warn_unused_result));

/* ---- keyring and key maintenance (store_keys.c) ---- */

/* Keyring rows, handed to a callback by store_keyring_load. */
typedef int (*store_keyring_fn)(void *arg, int32_t term, const uint8_t *wrapped, size_t len,
                                bool active, struct cof_err *e);

int store_keyring_load(struct store *s, store_keyring_fn fn, void *arg, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Inserts a term unless it exists (another replica may have won the race). */
int store_keyring_insert(struct store *s, int32_t term, const uint8_t *wrapped, size_t len,
                         bool active, struct cof_err *e) __attribute__((warn_unused_result));
/* In a transaction: locks the keyring against other rotations; *max is the highest term. */
int store_keyring_lock(struct store *s, int32_t *max, struct cof_err *e)
        __attribute__((warn_unused_result));
/* In that transaction: adds `term` and makes it the only active one. */
int store_keyring_activate(struct store *s, int32_t term, const uint8_t *wrapped, size_t len,
                           struct cof_err *e) __attribute__((warn_unused_result));
/* Replaces the wrapped bytes of a term, or of a server key (root-key replacement). */
int store_keyring_set_wrapped(struct store *s, int32_t term, const uint8_t *wrapped, size_t len,
                              struct cof_err *e) __attribute__((warn_unused_result));
int store_server_key_set(struct store *s, const char *name, const uint8_t *wrapped, size_t len,
                         struct cof_err *e) __attribute__((warn_unused_result));
int store_server_key_get(struct store *s, const char *name, uint8_t **wrapped, size_t *len,
                         struct cof_err *e) __attribute__((warn_unused_result));
/* Inserts unless it exists (another replica may have won). */
int store_server_key_insert(struct store *s, const char *name, const uint8_t *wrapped, size_t len,
                            struct cof_err *e) __attribute__((warn_unused_result));
/* Up to `limit` value rows sealed under another term than `term` (every row when term is 0)
 * with id > after; in a write transaction with `lock`, locked (SKIP LOCKED: concurrent rewraps
 * share the work). */
int store_values_for_rewrap(struct store *s, int32_t term, int64_t after, int limit, bool lock,
                            struct store_sealed **rows, size_t *n, struct cof_err *e)
        __attribute__((warn_unused_result));
/* How many value rows are sealed under another term than `term` (every row when term is 0). */
int store_values_count(struct store *s, int32_t term, int64_t *n, struct cof_err *e)
        __attribute__((warn_unused_result));
int store_value_reseal(struct store *s, int64_t row_id, int32_t term, const uint8_t *sealed,
                       size_t len, struct cof_err *e) __attribute__((warn_unused_result));
/* How many value rows each term seals: terms[i] has counts[i] rows; *n entries (at most cap). */
int store_term_counts(struct store *s, int32_t *terms, int64_t *counts, int cap, int *n,
                      struct cof_err *e) __attribute__((warn_unused_result));

/* ---- tokens and audit rows (store_access.c) ---- */

struct store_token {
	char id[32];                                 /* tok_... */
	char name[LIMIT_NAME_BUF];                   /* label */
	int role;                                    /* enum role */
	char project[LIMIT_NAME_BUF];                /* scope; "" for admin */
	int n_envs;                                  /* entries in envs; 0: all */
	char envs[LIMIT_TOKEN_ENVS][LIMIT_NAME_BUF]; /* runtime scope */
	int versions;      /* bit (1 << (version - 1)) per enum version; 0: all */
	int64_t create_us; /* creation time */
	int64_t expire_us; /* 0: never */
	bool usable;       /* not revoked and not expired */
};

int store_token_insert(struct store *s, const struct store_token *t, const uint8_t *hash,
                       size_t hash_len, int64_t ttl_seconds, struct store_token *out,
                       struct cof_err *e) __attribute__((warn_unused_result));
/* The token whose secret hashes to `hash`; COF_ENOTFOUND when none. */
int store_token_by_hash(struct store *s, const uint8_t *hash, size_t hash_len,
                        struct store_token *out, uint8_t *stored_hash, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Tokens not revoked, of `project` ("" and all_projects: every token), by id after `after`. */
int store_token_list(struct store *s, const char *project, bool all_projects, const char *after,
                     int limit, struct store_token *out, int *n, struct cof_err *e)
        __attribute__((warn_unused_result));
/* COF_ENOTFOUND when there is no such usable token. */
int store_token_revoke(struct store *s, const char *id, struct cof_err *e)
        __attribute__((warn_unused_result));
int store_token_count(struct store *s, int64_t *n, struct cof_err *e)
        __attribute__((warn_unused_result));

/* ---- console sessions (store_access.c) ---- */

/* Stores a session of token_id under the secret's hash, ending max_seconds from now (*expire_us),
 * and removes sessions that have ended (idle for idle_seconds, or past their end). */
int store_session_insert(struct store *s, const uint8_t *hash, size_t hash_len,
                         const char *token_id, int max_seconds, int idle_seconds,
                         int64_t *expire_us, struct cof_err *e) __attribute__((warn_unused_result));
/* The token of the live session whose secret hashes to hash (used within idle_seconds and not
 * past its end), marking it used now; *expire_us its end. COF_ENOTFOUND when none; out->usable
 * false when its token is revoked or expired. */
int store_session_use(struct store *s, const uint8_t *hash, size_t hash_len, int idle_seconds,
                      struct store_token *out, int64_t *expire_us, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Ends the session whose secret hashes to hash (none: 0). */
int store_session_delete(struct store *s, const uint8_t *hash, size_t hash_len, struct cof_err *e)
        __attribute__((warn_unused_result));

/* Inserts rows[0..n) in one transaction (the audit writer's batches). */
int store_audit_insert(struct store *s, const struct audit_row *rows, size_t n, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Rows of `project` ("" and all_projects: every row) at or after since_us, by id after after_id. */
int store_audit_list(struct store *s, const char *project, bool all_projects, int64_t since_us,
                     int64_t after_id, int limit, struct audit_row *out, int *n, struct cof_err *e)
        __attribute__((warn_unused_result));

#endif
