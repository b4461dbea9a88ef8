/*
 * changes.h - the listener: a connection of its own that LISTENs on coffer_changes (migration
 * 0004) and applies what every replica's writes publish to this replica's cache, in commit order.
 *
 * While it listens the cache serves; when the connection drops, the cache is turned off and
 * emptied before anything else is served from it, and it reconnects with backoff (100 ms to 2 s).
 * It pings the database when it has heard nothing for half a second, each ping bounded by 2 s:
 * one without an answer turns the cache off and gives up every connection to that server (it
 * may hang), which is what Health/Check reports. After each reconnection it compares the
 * server's timeline and system identifier with the last ones. Each project change is also handed
 * to a hook (the api's waits and watches); project 0 means "anything may have changed" (after a
 * reconnect), with CHANGES_NEW_HISTORY when the history itself changed.
 */
#ifndef COFFER_CHANGES_H
#define COFFER_CHANGES_H

#include <stdbool.h>
#include <stdint.h>

#include "errors.h"

struct cache;
struct changes;

/* The hook's revision when project_id is 0 and the database is on another history than before
 * (a failover to a new timeline, a restored backup): revisions heard of may never have been. */
#define CHANGES_NEW_HISTORY (-1)

/* What the listener hands on besides the cache, from its thread. */
struct changes_hooks {
	/* Project project_id is at revision (-1: deleted); 0: anything may have changed. */
	void (*project)(void *arg, int64_t project_id, int64_t revision);
	/* Token token_id was revoked (or went with its project). */
	void (*token)(void *arg, const char *token_id);
	void *arg; /* their argument */
};

/* Starts listening on url, applying changes to cache (kept, not owned). */
int changes_start(const char *url, struct cache *cache, struct changes **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Stops the listener. NULL-safe. */
void changes_stop(struct changes *ch);
/* Sets the hooks (a copy; NULL: none). */
void changes_set_hooks(struct changes *ch, const struct changes_hooks *h);
/* Whether the listener listens now (the cache is coherent). */
bool changes_listening(struct changes *ch);
/* Whether the database answered the listener within the last 3 seconds. */
bool changes_db_ready(struct changes *ch);
/* Applies one notification payload ("p <id> <rev>", "t <id>", "k"); what the listener does with
 * each, and what this replica does after its own commits. */
void changes_apply(struct changes *ch, const char *payload);

#endif
