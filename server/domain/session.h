/*
 * session.h - what a domain operation runs with: one database connection and the keyring.
 *
 * struct domain is process-wide: the connection pool, the keyring, the cache and the listener
 * that keeps the cache coherent (cache.h, changes.h). A call opens a session when it first needs
 * the database and closes it when it ends; commands that run outside the server (cofferd
 * migrate, keys, the start-up checks) connect a session of their own, without a cache. A
 * memory-only session (store NULL) serves what the cache holds; a domain operation that would
 * need the database then fails with COF_EWOULDBLOCK, and the caller runs it again on a real one.
 */
#ifndef COFFER_SESSION_H
#define COFFER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "changes.h"
#include "errors.h"

struct store;
struct crypt_keyring;
struct domain;
struct cache;
struct cache_stats;

struct session {
	struct store *store;      /* the connection; NULL when the session is closed */
	struct crypt_keyring *kr; /* the keyring (not owned) */
	struct domain *owner;     /* the pool it came from; NULL: a connection of its own */
};

/* The pool of `connections` connections to url (one per database thread; the audit writer and
 * the listener have their own), the keyring kr (kept, not owned), a cache of
 * cache_bytes of resolve rows (0: tokens only) and its listener on notify_url (NULL or "": url),
 * which is given up to 2 s to start listening. */
int domain_new(const char *url, const char *notify_url, int connections, size_t cache_bytes,
               struct crypt_keyring *kr, struct domain **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Closes every connection; every session must be closed. NULL-safe. */
void domain_free(struct domain *d);
/* Database connections by their last known state, for the metrics. */
void domain_connection_states(struct domain *d, int *up, int *down);
/* Whether the database answered within the last seconds and confirms commits (Health/Check),
 * without asking it. */
bool domain_db_ready(struct domain *d);
/* Every wait for the database ends now and every later one fails at once: the server stops
 * whatever the database does. */
void domain_abort(struct domain *d);
/* Whether url parses as a connection string; why not into why (never the URL itself). */
bool domain_url_valid(const char *url, char *why, size_t cap);
/* The hooks (copied; NULL: none) hear each project change and token revocation this replica
 * hears of, from the listener's thread or after this replica's own commits (changes.h). */
void domain_on_change(struct domain *d, const struct changes_hooks *h);
/* The cache's counters (all zero without a cache). */
void domain_cache_stats(struct domain *d, struct cache_stats *out);

/* Opens a session for one call: a pooled connection whose statements are bounded by timeout_ms
 * (waiting up to that long for a free one). */
int session_open(struct domain *d, int64_t timeout_ms, struct session *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* A memory-only session: the keyring and the cache, no connection. Nothing to close. */
void session_memory(struct domain *d, struct session *out);
/* The session's cache, or NULL (a session of its own, or a domain without one). */
struct cache *session_cache(struct session *ss);
/* store_tx on the session's connection; after a commit, this replica's cache forgets what the
 * transaction changed before the answer leaves (every replica also hears of it). */
int session_tx(struct session *ss, int mode /* enum store_tx_mode */,
               int (*fn)(struct store *s, void *arg, struct cof_err *e), void *arg,
               struct audit_row *audit, struct cof_err *e) __attribute__((warn_unused_result));
/* A session on a connection of its own, retrying for up to wait_s seconds while the database
 * does not answer. */
int session_connect(const char *url, struct crypt_keyring *kr, int wait_s, struct session *out,
                    struct cof_err *e) __attribute__((warn_unused_result));
/* Gives the connection back (or closes it). NULL-safe, and safe on a closed session. */
void session_close(struct session *ss);
/* Whether the database answers now. */
bool session_ping(struct session *ss);

/* Applies pending migrations; *applied counts them. */
int session_migrate(struct session *ss, int *applied, struct cof_err *e)
        __attribute__((warn_unused_result));
/* COF_EPRECOND, naming both versions, when the schema is behind this build. */
int session_check_schema(struct session *ss, struct cof_err *e) __attribute__((warn_unused_result));

/* audit_sink_fn (arg: the struct domain): one transaction per batch, on a connection of the
 * writer's own, bounded by 5 s. From the writer's thread only. */
/* audit_idle_fn: while commits are not confirmed, a write probe every 2 s on that connection. */
void domain_audit_idle(void *domain);
int domain_audit_sink(void *domain, const struct audit_row *rows, size_t n, struct cof_err *e);

#endif
