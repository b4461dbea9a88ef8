/* audit.c - the group-commit audit writer (see audit.h). */
#include "audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

/* Counted rows are written every FLUSH_MS; at most MAX_COUNTED distinct (peer, method, code,
 * project) are
 * kept between two flushes, and the rest are counted in one row whose peer says so. */
#define FLUSH_MS    2000
#define MAX_COUNTED 256
/* Rows that may wait at once unless told otherwise: beyond it the audit log is not keeping up, and
 * calls are refused. */
#define DEFAULT_BACKLOG 100000
/* How long the writer is idle before it calls its idle hook (and between two calls). */
#define IDLE_MS 1000
/* Rows in one transaction at most. */
#define MAX_BATCH 2000
/* Rows of the streams lane in one batch: a call's answer that arrives meanwhile waits for a short
 * commit, not for a burst of stream openings; fewer still beside calls' rows. */
#define STREAMS_BATCH        256
#define STREAMS_BESIDE_CALLS 64

struct waiter {
	struct audit_row ev; /* the row */
	audit_done_fn done;  /* told when it is stored */
	void *arg;           /* its argument */
	struct waiter *next; /* queue link */
};

/* One lane of queued rows, oldest first. */
struct lane {
	struct waiter *head, *tail;
};

struct audit {
	struct audit_opts o;                   /* sink, idle hook, bound */
	pthread_t thread;                      /* the writer */
	pthread_mutex_t mu;                    /* guards everything below */
	pthread_cond_t work;                   /* signalled when rows are queued or on stop */
	struct lane lanes[AUDIT_LANES];        /* queued rows: calls, streams */
	int backlog;                           /* rows queued */
	struct audit_row counted[MAX_COUNTED]; /* rows that stand for many calls, by key */
	size_t n_counted;                      /* entries in counted */
	struct timespec next_flush;            /* when counted rows are written next */
	bool stop;                             /* stop after the queue drains */
};

/* Writes rows[0..n) through the sink; 0 or a COF_E* code (logged). Called without the lock. */
static int write_rows(struct audit *a, const struct audit_row *rows, size_t n)
{
	struct cof_err e = {0};
	int rc = a->o.sink(a->o.arg, rows, n, &e);
	if (rc)
		log_error("audit: cannot write %zu row%s: %s (%s)", n, n == 1 ? "" : "s", e.msg,
		          e.detail);
	return rc;
}

static bool due(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static void set_next_flush(struct audit *a)
{
	a->next_flush = clock_realtime_after_ms(FLUSH_MS);
}

/* With the lock held: writes the counted rows (dropping the lock meanwhile). */
static void flush_counted(struct audit *a)
{
	size_t n = a->n_counted;
	set_next_flush(a);
	if (n == 0)
		return;
	struct audit_row *rows = malloc(n * sizeof(*rows));
	if (rows == NULL)
		return; /* kept, and written at the next flush */
	memcpy(rows, a->counted, n * sizeof(*rows));
	a->n_counted = 0;
	pthread_mutex_unlock(&a->mu);
	write_rows(a, rows, n);
	free(rows);
	pthread_mutex_lock(&a->mu);
}

/* With the lock held: whether a row waits in any lane. */
static bool queued(const struct audit *a)
{
	return a->lanes[AUDIT_CALLS].head || a->lanes[AUDIT_STREAMS].head;
}

/* With the lock held: moves up to max rows from the head of l to *tail; how many. */
static size_t take(struct lane *l, size_t max, struct waiter ***tail)
{
	size_t n = 0;
	while (l->head && n < max) {
		struct waiter *w = l->head;
		l->head = w->next;
		w->next = NULL;
		**tail = w;
		*tail = &w->next;
		n++;
	}
	if (l->head == NULL)
		l->tail = NULL;
	return n;
}

static void *writer(void *arg)
{
	struct audit *a = arg;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!queued(a) && !a->stop && !(a->n_counted && due(&a->next_flush))) {
			struct timespec idle = clock_realtime_after_ms(IDLE_MS);
			const struct timespec *until =
			        a->n_counted && !due(&a->next_flush) ? &a->next_flush : &idle;
			if (pthread_cond_timedwait(&a->work, &a->mu, until) != 0 && a->o.idle &&
			    !queued(a) && !a->stop && until == &idle) {
				pthread_mutex_unlock(&a->mu);
				a->o.idle(a->o.arg);
				pthread_mutex_lock(&a->mu);
			}
		}
		if (a->n_counted && (a->stop || due(&a->next_flush)))
			flush_counted(a);
		if (!queued(a)) {
			if (a->stop && a->n_counted == 0)
				break; /* stopping, and nothing is left */
			continue;
		}
		/* Take what is queued, oldest first, up to a batch: the calls' rows, and the
		 * streams' rows beside them (few when calls wait, so that their commit stays
		 * short). */
		struct waiter *list = NULL, **tail = &list;
		size_t n = take(&a->lanes[AUDIT_CALLS], MAX_BATCH, &tail);
		n += take(&a->lanes[AUDIT_STREAMS], n ? STREAMS_BESIDE_CALLS : STREAMS_BATCH,
		          &tail);
		a->backlog -= (int)n;
		pthread_mutex_unlock(&a->mu);

		struct audit_row *rows = malloc(n * sizeof(*rows));
		int rc = rows ? 0 : COF_EINTERNAL;
		size_t i = 0;
		for (struct waiter *w = list; w && rows; w = w->next)
			rows[i++] = w->ev;
		if (rc == 0)
			rc = write_rows(a, rows, n);
		free(rows);
		for (struct waiter *w = list, *next; w; w = next) {
			next = w->next;
			if (w->done)
				w->done(w->arg, rc ? COF_EUNAVAIL : 0);
			free(w);
		}
		pthread_mutex_lock(&a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

void audit_count(struct audit *a, const struct audit_row *row)
{
	pthread_mutex_lock(&a->mu);
	struct audit_row *hit = NULL;
	for (size_t i = 0; i < a->n_counted && hit == NULL; i++) {
		struct audit_row *r = &a->counted[i];
		if (r->code == row->code && strcmp(r->peer, row->peer) == 0 &&
		    strcmp(r->method, row->method) == 0 && strcmp(r->project, row->project) == 0)
			hit = r;
	}
	if (hit == NULL && a->n_counted < MAX_COUNTED) {
		hit = &a->counted[a->n_counted++];
		*hit = *row;
		hit->count = 0;
		if (a->n_counted == MAX_COUNTED) /* the last slot counts everything else */
			snprintf(hit->peer, sizeof(hit->peer), "(other addresses)");
		if (a->n_counted == 1)
			set_next_flush(a);
	} else if (hit == NULL) {
		hit = &a->counted[MAX_COUNTED - 1];
	}
	hit->count++;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->mu);
}

int audit_start(const struct audit_opts *opts, struct audit **out, struct cof_err *e)
{
	*out = NULL;
	struct audit *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	a->o = *opts;
	if (a->o.max_backlog <= 0)
		a->o.max_backlog = DEFAULT_BACKLOG;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->work, NULL);
	if (pthread_create(&a->thread, NULL, writer, a) != 0) {
		free(a);
		return cof_err_set(e, COF_EINTERNAL, "cannot start the audit writer");
	}
	pthread_setname_np(a->thread, "coffer-audit");
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
	pthread_mutex_destroy(&a->mu);
	free(a);
}

int audit_submit(struct audit *a, enum audit_lane lane, const struct audit_row *row,
                 audit_done_fn done, void *arg)
{
	struct waiter *w = malloc(sizeof(*w));
	if (w == NULL)
		return COF_EUNAVAIL;
	*w = (struct waiter){.ev = *row, .done = done, .arg = arg};
	pthread_mutex_lock(&a->mu);
	if (a->stop || a->backlog >= a->o.max_backlog) {
		pthread_mutex_unlock(&a->mu);
		free(w);
		return COF_EUNAVAIL;
	}
	struct lane *l = &a->lanes[lane == AUDIT_STREAMS ? AUDIT_STREAMS : AUDIT_CALLS];
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
	a->backlog++;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

int audit_backlog(struct audit *a)
{
	pthread_mutex_lock(&a->mu);
	int n = a->backlog;
	pthread_mutex_unlock(&a->mu);
	return n;
}
