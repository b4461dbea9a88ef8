/* audit.c - the group-commit audit writer (see audit.h). */
#include "audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

enum { QUEUED, TAKEN, DONE };

struct waiter {
	struct audit_row ev; /* the row */
	int state;           /* QUEUED, TAKEN, DONE */
	int status;          /* when DONE: 0 or a COF_E* code */
	struct waiter *next; /* queue link */
};

struct audit {
	audit_sink_fn sink;  /* stores a batch */
	void *sink_arg;      /* its argument */
	pthread_t thread;    /* the writer */
	pthread_mutex_t mu;  /* guards everything below */
	pthread_cond_t work; /* signalled when rows are queued or on stop */
	pthread_cond_t done; /* signalled when a batch finishes */
	struct waiter *head; /* queued rows, newest first */
	int backlog;         /* rows queued */
	bool stop;           /* stop after the queue drains */
};

static void *writer(void *arg)
{
	struct audit *a = arg;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->head == NULL && !a->stop)
			pthread_cond_wait(&a->work, &a->mu);
		if (a->head == NULL)
			break; /* stopping, and nothing is left */
		/* Take everything queued (newest first in the list). */
		size_t n = 0;
		for (struct waiter *w = a->head; w; w = w->next)
			n++;
		struct waiter **batch = malloc(n * sizeof(*batch));
		struct audit_row *rows = malloc(n * sizeof(*rows));
		int rc = batch && rows ? 0 : COF_EINTERNAL;
		size_t i = n;
		for (struct waiter *w = a->head; w; w = w->next) {
			w->state = TAKEN;
			if (rc == 0) {
				batch[--i] = w;
				rows[i] = w->ev;
			}
		}
		struct waiter *list = a->head;
		a->head = NULL;
		a->backlog -= (int)n;
		pthread_mutex_unlock(&a->mu);

		struct cof_err e = {0};
		if (rc == 0)
			rc = a->sink(a->sink_arg, rows, n, &e);
		if (rc)
			log_error("audit: cannot write %zu row%s: %s (%s)", n, n == 1 ? "" : "s",
			          e.msg, e.detail);

		pthread_mutex_lock(&a->mu);
		/* A waiter may return as soon as it is DONE: read each link before marking it. */
		for (struct waiter *w = list, *next; w; w = next) {
			next = w->next;
			w->status = rc ? COF_EUNAVAIL : 0;
			w->state = DONE;
		}
		pthread_cond_broadcast(&a->done);
		free(batch);
		free(rows);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int audit_start(audit_sink_fn sink, void *sink_arg, struct audit **out, struct cof_err *e)
{
	*out = NULL;
	struct audit *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	a->sink = sink;
	a->sink_arg = sink_arg;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->work, NULL);
	pthread_cond_init(&a->done, NULL);
	if (pthread_create(&a->thread, NULL, writer, a) != 0) {
		free(a);
		return cof_err_set(e, COF_EINTERNAL, "cannot start the audit writer");
	}
	*out = a;
	return 0;
}

void audit_stop(struct audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_broadcast(&a->work);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	pthread_cond_destroy(&a->work);
	pthread_cond_destroy(&a->done);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

int audit_record(struct audit *a, const struct audit_row *row, int64_t timeout_ms)
{
	struct waiter w = {.ev = *row, .state = QUEUED};
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&a->mu);
	if (a->stop) {
		pthread_mutex_unlock(&a->mu);
		return COF_EUNAVAIL;
	}
	w.next = a->head;
	a->head = &w;
	a->backlog++;
	pthread_cond_signal(&a->work);
	while (w.state != DONE) {
		int r = pthread_cond_timedwait(&a->done, &a->mu, &until);
		if (r == ETIMEDOUT && w.state == QUEUED) {
			/* Not taken yet: withdraw it. (A taken row is waited for: the writer holds
			 * it.) */
			for (struct waiter **pp = &a->head; *pp; pp = &(*pp)->next)
				if (*pp == &w) {
					*pp = w.next;
					break;
				}
			a->backlog--;
			w.status = COF_EUNAVAIL;
			break;
		}
	}
	pthread_mutex_unlock(&a->mu);
	return w.status;
}

int audit_backlog(struct audit *a)
{
	pthread_mutex_lock(&a->mu);
	int n = a->backlog;
	pthread_mutex_unlock(&a->mu);
	return n;
}
