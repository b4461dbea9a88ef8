/*
 * workq.h - a fixed pool of threads taking jobs from one FIFO queue: the threads that only do
 * database work, so that the gRPC threads never wait for PostgreSQL.
 *
 * A job is a function and its argument; it runs once, on one of the pool's threads. The queue is
 * bounded: a full queue refuses a job at once (the caller answers "busy"), so that memory stays
 * bounded under any load. workq_free runs every job already queued, then joins the threads.
 */
#ifndef COFFER_WORKQ_H
#define COFFER_WORKQ_H

#include <stddef.h>

struct workq;

typedef void (*workq_fn)(void *arg);

/* threads workers; at most max_queued jobs waiting. 0, or -1 (nothing made) when out of memory
 * or threads cannot start. */
int workq_new(int threads, size_t max_queued, struct workq **out);
/* Queues fn(arg). 0, or -1 when the queue is full or stopping (fn will not run). */
int workq_submit(struct workq *q, workq_fn fn, void *arg);
/* Jobs waiting (not yet started). */
size_t workq_backlog(struct workq *q);
/* Runs what is queued, stops the threads and frees the pool. NULL-safe. */
void workq_free(struct workq *q);

#endif
