/*
 * store.h - PostgreSQL storage: the only room that touches libpq.
 *
 * A struct store is one connection, owned by one worker thread. Every function returns 0 or a
 * negative COF_E* code and fills the caller's struct cof_err: `msg` is safe for clients, `detail`
 * (SQL errors) is for the log. Writes run between store_begin and store_commit under the project
 * row lock (store_project_lock); the caller raises the revision with store_project_set_revision.
 * A lost connection fails the call with COF_EUNAVAIL and is re-established by store_call_begin.
 * Values cross this border only as sealed blobs.
 */
#ifndef COFFER_STORE_H
#define COFFER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define STORE_NAME_MAX 129
#define STORE_DESC_MAX 1025

struct store;

struct store_project {
	int64_t id;                       /* projects.id */
	char name[STORE_NAME_MAX];        /* unique name */
	char description[STORE_DESC_MAX]; /* free text */
	int64_t revision;                 /* current revision */
	int64_t create_us;                /* microseconds since the epoch */
};

struct store_secret {
	int64_t id;                       /* secrets.id */
	int64_t project_id;               /* owner */
	char name[STORE_NAME_MAX];        /* unique among current secrets of the project */
	int visibility;                   /* 1 masked, 2 restricted */
	char description[STORE_DESC_MAX]; /* free text */
	int64_t revision;                 /* last change */
	int64_t create_us;                /* creation time */
	int64_t update_us;                /* last change time */
};

/* A sealed value row. */
struct store_value {
	int64_t valid_from; /* revision that wrote it */
	int32_t term;       /* keyring term */
	uint8_t *sealed;    /* malloc'd blob; free with free() */
	size_t sealed_len;  /* bytes in sealed */
};

/* Keyring rows, handed to a callback by store_keyring_load. */
typedef int (*store_keyring_fn)(void *arg, int32_t term, const uint8_t *wrapped, size_t len,
                                bool active, struct cof_err *e);

/* Connects (url: libpq keywords or URI). A connection that fails now is kept and retried by
 * store_call_begin, so *out is set whenever memory allows; the return value says whether the
 * database answered. */
int store_open(const char *url, struct store **out, struct cof_err *e)
        __attribute__((warn_unused_result));
void store_close(struct store *s);
/* Prepares the connection for one call: reconnects if it was lost and bounds each statement by
 * timeout_ms (the call's remaining deadline, or the configured default). */
int store_call_begin(struct store *s, int64_t timeout_ms, struct cof_err *e)
        __attribute__((warn_unused_result));
/* SELECT 1: is the database reachable now? */
bool store_ping(struct store *s);

int store_begin(struct store *s, struct cof_err *e) __attribute__((warn_unused_result));
/* A read-only REPEATABLE READ transaction: every read in it sees one snapshot. */
int store_begin_snapshot(struct store *s, struct cof_err *e) __attribute__((warn_unused_result));
int store_commit(struct store *s, struct cof_err *e) __attribute__((warn_unused_result));
/* Rolls back an open transaction; harmless when none is open. */
void store_rollback(struct store *s);

/* Applies pending migrations (store_migrate.c). *applied counts the new ones. */
int store_migrate(struct store *s, int *applied, struct cof_err *e)
        __attribute__((warn_unused_result));
/* The highest applied migration (0 on an empty database) and the highest this build knows. */
int store_schema_version(struct store *s, int *applied, int *known, struct cof_err *e)
        __attribute__((warn_unused_result));

int store_keyring_load(struct store *s, store_keyring_fn fn, void *arg, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Inserts a term unless it exists (another replica may have won the race). */
int store_keyring_insert(struct store *s, int32_t term, const uint8_t *wrapped, size_t len,
                         bool active, struct cof_err *e) __attribute__((warn_unused_result));

/* Projects. create also makes environment `main`, both at revision 1. */
int store_project_create(struct store *s, const char *name, const char *description,
                         struct store_project *out, struct cof_err *e)
        __attribute__((warn_unused_result));
int store_project_get(struct store *s, const char *name, struct store_project *out,
                      struct cof_err *e) __attribute__((warn_unused_result));
/* Up to `limit` projects with name > after, by name; *n is how many were filled. */
int store_project_list(struct store *s, const char *after, int limit, struct store_project *out,
                       int *n, struct cof_err *e) __attribute__((warn_unused_result));
int store_project_delete(struct store *s, const char *name, int64_t expected_revision,
                         struct cof_err *e) __attribute__((warn_unused_result));
/* In a transaction: locks the project row; fills id and current revision. */
int store_project_lock(struct store *s, const char *name, int64_t *id, int64_t *revision,
                       struct cof_err *e) __attribute__((warn_unused_result));
int store_project_set_revision(struct store *s, int64_t id, int64_t revision, struct cof_err *e)
        __attribute__((warn_unused_result));

/* Secrets. get: the current secret `name` of `project` (NOT_FOUND names which is missing). */
int store_secret_get(struct store *s, const char *project, const char *name,
                     struct store_secret *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* In a transaction, under the project lock: the current secret or COF_ENOTFOUND. */
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
/* Marks the secret deleted at `revision` and ends every current value of it (its overrides too). */
int store_secret_delete(struct store *s, int64_t secret_id, int64_t revision, struct cof_err *e)
        __attribute__((warn_unused_result));

/* ---- environments and overrides (store_envs.c) ---- */

struct store_environment {
	int64_t id;                       /* environments.id */
	int64_t project_id;               /* owner */
	char name[STORE_NAME_MAX];        /* unique among current environments of the project */
	char description[STORE_DESC_MAX]; /* free text */
	int64_t revision;                 /* last change, overrides included */
	int64_t create_us;                /* creation time */
};

struct store_override {
	char secret[STORE_NAME_MAX]; /* secret name */
	int version;                 /* 1 draft, 2 live */
	int64_t revision;            /* the revision that set it */
	int64_t update_us;           /* when */
};

/* A sealed value with its identity: what merge and resolve read. */
struct store_sealed {
	int64_t secret_id;           /* secrets.id */
	char secret[STORE_NAME_MAX]; /* its name */
	int visibility;              /* its visibility now */
	int64_t environment_id;      /* 0: the project default */
	int version;                 /* 0 default, 1 draft, 2 live */
	int64_t valid_from;          /* the revision that wrote it */
	uint8_t *sealed;             /* malloc'd blob */
	size_t sealed_len;           /* bytes in sealed */
	int64_t row_id;              /* secret_values.id (key maintenance only) */
	int64_t project_id;          /* owner (key maintenance only) */
	int32_t term;                /* keyring term (key maintenance only) */
};
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
/* In a transaction: every current override of an environment (both versions), by name, version. */
int store_override_rows(struct store *s, int64_t environment_id, struct store_sealed **rows,
                        size_t *n, struct cof_err *e) __attribute__((warn_unused_result));
/* The effective value of every secret that existed at revision `at`, in (environment, version):
 * the override valid then if any, else the default; by name (C collation). */
int store_resolve_rows(struct store *s, int64_t project_id, int64_t environment_id, int version,
                       int64_t at, struct store_sealed **rows, size_t *n, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Ends the current row of (secret, environment, version) at `revision`; COF_ENOTFOUND if none. */
int store_value_end(struct store *s, int64_t secret_id, int64_t environment_id, int version,
                    int64_t revision, struct cof_err *e) __attribute__((warn_unused_result));

/* ---- key maintenance (store_keys.c) ---- */

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
/* In a transaction: up to `limit` value rows sealed under another term than `term` (every row
 * when term is 0) with id > after, locked (SKIP LOCKED: concurrent rewraps share the work). */
int store_values_for_rewrap(struct store *s, int32_t term, int64_t after, int limit, bool lock,
                            struct store_sealed **rows, size_t *n, struct cof_err *e)
        __attribute__((warn_unused_result));
int store_value_reseal(struct store *s, int64_t row_id, int32_t term, const uint8_t *sealed,
                       size_t len, struct cof_err *e) __attribute__((warn_unused_result));
/* How many value rows each term seals: terms[i] has counts[i] rows; *n entries (at most cap). */
int store_term_counts(struct store *s, int32_t *terms, int64_t *counts, int cap, int *n,
                      struct cof_err *e) __attribute__((warn_unused_result));

/* ---- access: server keys, tokens, audit (store_access.c) ---- */

#define STORE_TOKEN_MAX_ENVS 32

struct store_token {
	char id[32];                  /* tok_... */
	char name[STORE_NAME_MAX];    /* label */
	int role;                     /* 1 admin, 2 editor, 3 viewer, 4 runtime */
	char project[STORE_NAME_MAX]; /* scope; "" for admin */
	int n_envs;                   /* entries in envs; 0: all */
	char envs[STORE_TOKEN_MAX_ENVS][STORE_NAME_MAX]; /* runtime scope */
	int versions;                                    /* bit 1 draft, bit 2 live; 0: all */
	int64_t create_us;                               /* creation time */
	int64_t expire_us;                               /* 0: never */
	bool usable;                                     /* not revoked and not expired */
};

/* One audit row. Never a value or a token secret. */
struct store_audit {
	int64_t id;                   /* audit_events.id (lists) */
	int64_t time_us;              /* when (lists) */
	char token_id[32];            /* who */
	char method[96];              /* full method path */
	char project[STORE_NAME_MAX]; /* request fields, when the request has them */
	char environment[STORE_NAME_MAX];
	char secret[STORE_NAME_MAX];
	int version;
	int code;         /* gRPC status */
	char peer[64];    /* transport peer */
	int64_t revision; /* the write's revision, 0 otherwise */
};

int store_server_key_get(struct store *s, const char *name, uint8_t **wrapped, size_t *len,
                         struct cof_err *e) __attribute__((warn_unused_result));
/* Inserts unless it exists (another replica may have won). */
int store_server_key_insert(struct store *s, const char *name, const uint8_t *wrapped, size_t len,
                            struct cof_err *e) __attribute__((warn_unused_result));

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

/* Inserts rows in one transaction. */
int store_audit_insert(struct store *s, const struct store_audit *rows, size_t n, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Rows of `project` ("" and all_projects: every row) at or after since_us, by id after after_id. */
int store_audit_list(struct store *s, const char *project, bool all_projects, int64_t since_us,
                     int64_t after_id, int limit, struct store_audit *out, int *n,
                     struct cof_err *e) __attribute__((warn_unused_result));
/* The audit row the next store_commit writes in its transaction (NULL: none). The revision is
 * taken from the transaction (store_project_set_revision, project create or delete). */
void store_audit_set(struct store *s, const struct store_audit *ev);
/* Whether the last commit wrote the pending audit row. */
bool store_audit_committed(const struct store *s);

/* Values. environment_id 0 with version 0 is the project default. put ends the current row for
 * (secret, environment, version) at `revision` and inserts the new one valid from `revision`. */
int store_value_put(struct store *s, int64_t secret_id, int64_t environment_id, int version,
                    int64_t revision, int32_t term, const uint8_t *sealed, size_t len,
                    struct cof_err *e) __attribute__((warn_unused_result));
/* The current value row; COF_ENOTFOUND when there is none. */
int store_value_current(struct store *s, int64_t secret_id, int64_t environment_id, int version,
                        struct store_value *out, struct cof_err *e)
        __attribute__((warn_unused_result));
void store_value_clear(struct store_value *v);

#endif
