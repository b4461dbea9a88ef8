/*
 * domain.h - the domain as a process holds it: struct domain is process-wide, the connection pool,
 * the keyring, the cache and the listener that keeps the cache coherent (cache.h, listener.h), and
 * the audit writer's connection. Sessions are lent from it (session.h).
 */
#ifndef COFFER_DOMAIN_H
#define COFFER_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "errors.h"
#include "listener.h"

struct crypt_keyring;
struct domain;
struct cache_stats;

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
 * hears of, from the listener's thread or after this replica's own commits (listener.h). */
void domain_on_change(struct domain *d, const struct listener_hooks *h);
/* The cache's counters (all zero without a cache). */
void domain_cache_stats(struct domain *d, struct cache_stats *out);

/* audit_sink_fn (arg: the struct domain): one transaction per batch, on a connection of the
 * writer's own, bounded by 5 s. From the writer's thread only. */
/* audit_idle_fn: while commits are not confirmed, a write probe every 2 s on that connection. */
void domain_audit_idle(void *domain);
int domain_audit_sink(void *domain, const struct audit_row *rows, size_t n, struct cof_err *e);

#endif
