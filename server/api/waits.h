/*
 * waits.h - calls parked until a project reaches a revision (ResolveSecrets' min_revision): they
 * hold memory, not a thread. A call is woken when this replica hears that its project moved far
 * enough (the listener's notifications, or its own commits), every POLL_MS in any case (in case
 * notifications are down), and when its time is up; then it runs again and parks again if it
 * must.
 */
#ifndef COFFER_WAITS_H
#define COFFER_WAITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"

/* One parked call; lives in the call. */
struct wait {
	void *call;            /* what to wake */
	int64_t project_id;    /* the project it waits for */
	int64_t revision;      /* the revision it needs */
	int64_t deadline_ms;   /* monotonic: when its time is up */
	int64_t next_check_ms; /* monotonic: when it looks again anyway */
	bool history_moved;    /* it was woken because the database's history moved (a failover) */
	struct list_node node; /* in the parked calls, or the list being woken */
};

struct waits;

/* wake(call, arg) runs once per parking, on the waits' thread or the notifier's, without locks. */
typedef void (*waits_wake_fn)(void *call, void *arg);

int waits_new(waits_wake_fn wake, void *arg, struct waits **out);
/* Wakes every parked call, stops the thread, frees. NULL-safe. */
void waits_free(struct waits *ws);
/* The news heard so far, as a number that only grows: a call takes it before it reads. */
uint64_t waits_seq(struct waits *ws);
/* Parks call (node lives in it) until project_id reaches revision, or deadline_ms passes. When
 * news of that revision came after seq (the call read before it), the call is woken at once;
 * news it has read past already never wakes it again, so a call never spins. */
void waits_add(struct waits *ws, struct wait *node, void *call, int64_t project_id,
               int64_t revision, int64_t deadline_ms, uint64_t seq);
/* Project project_id is at revision: wakes those it satisfies (project 0: everyone; with
 * revision LISTENER_NEW_HISTORY the database's history moved: what was heard is forgotten and the
 * woken calls are told so). */
void waits_changed(struct waits *ws, int64_t project_id, int64_t revision);
/* Wakes every parked call now (shutdown). */
void waits_wake_all(struct waits *ws);
/* Calls parked now. */
size_t waits_count(struct waits *ws);

#endif
