/*
 * changes.h - the listener: a connection of its own that LISTENs on coffer_changes (migration
 * 0004) and applies what every replica's writes publish to this replica's cache, in commit order.
 *
 * While it listens the cache serves; when the connection drops, the cache is turned off and
 * emptied before anything else is served from it, and it reconnects with backoff (100 ms to 2 s).
 * It pings the database every second, which is what Health/Check reports. Each project change is
 * also handed to a hook (the api's waits for min_revision); project 0 means "anything may have
 * changed" (after a reconnect).
 */
#ifndef COFFER_CHANGES_H
#define COFFER_CHANGES_H

#include <stdbool.h>
#include <stdint.h>

#include "errors.h"

struct cache;
struct changes;

typedef void (*changes_hook_fn)(void *arg, int64_t project_id, int64_t revision);

/* Starts listening on url, applying changes to cache (kept, not owned). */
int changes_start(const char *url, struct cache *cache, struct changes **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Stops the listener. NULL-safe. */
void changes_stop(struct changes *ch);
/* Sets the hook called for each project change (NULL: none); from the listener's thread. */
void changes_set_hook(struct changes *ch, changes_hook_fn fn, void *arg);
/* Whether the listener listens now (the cache is coherent). */
bool changes_listening(struct changes *ch);
/* Whether the database answered the listener within the last 3 seconds. */
bool changes_db_ready(struct changes *ch);
/* Applies one notification payload ("p <id> <rev>", "t <id>", "k"); what the listener does with
 * each, and what this replica does after its own commits. */
void changes_apply(struct changes *ch, const char *payload);

#endif
