/*
 * listener.h - the listener: a connection of its own that LISTENs on coffer_changes (migration
 * 0004) and applies what every replica's writes publish to this replica's cache, in commit order.
 *
 * While it listens the cache serves; when the connection drops, the cache is turned off and
 * emptied before anything else is served from it, and it reconnects with backoff (100 ms to 2 s).
 * It pings the database when it has heard nothing for half a second, each ping bounded by 2 s:
 * one without an answer turns the cache off and gives up every connection to that server (it
 * may hang), which is what Health/Check reports. After each reconnection it compares the
 * server's timeline and system identifier with the last ones. Each project change is also handed
 * to a hook (the api's waits and watches); project 0 means "anything may have changed" (after a
 * reconnect), with LISTENER_NEW_HISTORY when the history itself changed.
 */
#ifndef COFFER_LISTENER_H
#define COFFER_LISTENER_H

#include <stdbool.h>
#include <stdint.h>

#include "errors.h"

struct cache;
struct listener;

/* The hook's revision when project_id is 0 and the database is on another history than before
 * (a failover to a new timeline, a restored backup): revisions heard of may never have been. */
#define LISTENER_NEW_HISTORY (-1)

/* What the listener hands on besides the cache, from its thread. */
struct listener_hooks {
	/* Project project_id is at revision (-1: deleted); 0: anything may have changed. */
	void (*project)(void *arg, int64_t project_id, int64_t revision);
	/* Token token_id was revoked (or went with its project). */
	void (*token)(void *arg, const char *token_id);
	void *arg; /* their argument */
};

/* Starts listening on url, applying changes to cache (kept, not owned). */
int listener_start(const char *url, struct cache *cache, struct listener **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Stops the listener. NULL-safe. */
void listener_stop(struct listener *ch);
/* Sets the hooks (a copy; NULL: none). */
void listener_set_hooks(struct listener *ch, const struct listener_hooks *h);
/* Whether the listener listens now (the cache is coherent). */
bool listener_listening(struct listener *ch);
/* Whether the database answered the listener within the last 3 seconds. */
bool listener_db_ready(struct listener *ch);
/* Applies one notification payload ("p <id> <rev>", "t <id>", "k"); what the listener does with
 * each, and what this replica does after its own commits. */
void listener_apply(struct listener *ch, const char *payload);

#endif
