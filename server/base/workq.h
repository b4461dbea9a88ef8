/*
 * workq.h - a fixed pool of threads taking jobs from bounded FIFO queues: the threads that only do
 * database work, so that the gRPC threads never wait for PostgreSQL.
 *
 * A job is a function and its argument; it runs once, on one of the pool's threads. There are
 * two lanes, each first in, first out: calls (a client waits for each) and background work (the
 * watch streams' messages). A free thread takes a call first, but never passes over background
 * work more than WORKQ_CALLS_PER_BACKGROUND times in a row, so that neither starves the other: a
 * burst of thousands of watch openings does not hold up a resolve, and a flood of calls does not
 * silence the watches. Each lane is bounded: a full lane refuses a job at once (the caller
 * answers "busy"), so that memory stays bounded under any load. workq_free runs every job already
 * queued, then joins the threads.
 */
#ifndef COFFER_WORKQ_H
#define COFFER_WORKQ_H

#include <stddef.h>

struct workq;

typedef void (*workq_fn)(void *arg);

enum workq_lane {
	WORKQ_CALLS,      /* a client waits for it */
	WORKQ_BACKGROUND, /* streams' messages and other work no single call waits for */
	WORKQ_LANES,
};

/* Calls a thread takes before background work that waits. */
#define WORKQ_CALLS_PER_BACKGROUND 4

/* threads workers; at most max_queued jobs waiting in each lane. 0, or -1 (nothing made) when out
 * of memory or threads cannot start. */
int workq_new(int threads, size_t max_queued, struct workq **out);
/* Queues fn(arg) in lane. 0, or -1 when the lane is full or stopping (fn will not run). */
int workq_submit(struct workq *q, enum workq_lane lane, workq_fn fn, void *arg);
/* Jobs waiting (not yet started) in every lane. */
size_t workq_backlog(struct workq *q);
/* Runs what is queued, stops the threads and frees the pool. NULL-safe. */
void workq_free(struct workq *q);

#endif
