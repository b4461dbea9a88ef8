/*
 * session.h - what a domain operation runs with: one database connection and the keyring.
 *
 * A call opens a session from the domain's pool (domain.h) when it first needs the database and
 * closes it when it ends; commands that run outside the server (cofferd
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

/* Opens a session for one call: a pooled connection whose statements are bounded by timeout_ms
 * (waiting up to that long for a free one). */
int session_open(struct domain *d, int64_t timeout_ms, struct session *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* A memory-only session: the keyring and the cache, no connection. Nothing to close. */
void session_memory(struct domain *d, struct session *out);
/* The session's cache, or NULL (a session of its own, or a domain without one). */
struct cache *session_cache(struct session *ss);
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

#endif
