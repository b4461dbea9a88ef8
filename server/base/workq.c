/* workq.c - the job pool (see workq.h). */
#include "workq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct job {
	workq_fn fn;
	void *arg;
};

/* One lane: a ring of cap jobs. */
struct lane {
	struct job *ring; /* the queue */
	size_t head, n;   /* first job and how many */
};

struct workq {
	pthread_mutex_t mu;             /* guards everything below */
	pthread_cond_t work;            /* signalled when a job is queued or on stop */
	struct lane lanes[WORKQ_LANES]; /* calls, background */
	size_t cap;                     /* each lane's room */
	int calls_in_a_row;             /* calls taken while background work waited */
	bool stop;                      /* no more jobs; threads leave when the lanes are empty */
	pthread_t *threads;             /* the workers */
	int n_threads;                  /* started */
};

/* With the lock held: the lane the next job comes from (one that has jobs). */
static struct lane *next_lane(struct workq *q)
{
	struct lane *calls = &q->lanes[WORKQ_CALLS], *bg = &q->lanes[WORKQ_BACKGROUND];
	if (calls->n && (bg->n == 0 || q->calls_in_a_row < WORKQ_CALLS_PER_BACKGROUND)) {
		q->calls_in_a_row = bg->n ? q->calls_in_a_row + 1 : 0;
		return calls;
	}
	q->calls_in_a_row = 0;
	return bg;
}

static size_t queued(const struct workq *q)
{
	return q->lanes[WORKQ_CALLS].n + q->lanes[WORKQ_BACKGROUND].n;
}

static void *worker(void *arg)
{
	struct workq *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (queued(q) == 0 && !q->stop)
			pthread_cond_wait(&q->work, &q->mu);
		if (queued(q) == 0)
			break;
		struct lane *l = next_lane(q);
		struct job j = l->ring[l->head];
		l->head = (l->head + 1) % q->cap;
		l->n--;
		pthread_mutex_unlock(&q->mu);
		j.fn(j.arg);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int workq_new(int threads, size_t max_queued, struct workq **out)
{
	*out = NULL;
	struct workq *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -1;
	q->cap = max_queued ? max_queued : 1;
	bool ok = true;
	for (int l = 0; l < WORKQ_LANES; l++)
		ok = ok && (q->lanes[l].ring = calloc(q->cap, sizeof(struct job))) != NULL;
	q->threads = calloc((size_t)(threads > 0 ? threads : 1), sizeof(*q->threads));
	if (!ok || q->threads == NULL) {
		for (int l = 0; l < WORKQ_LANES; l++)
			free(q->lanes[l].ring);
		free(q->threads);
		free(q);
		return -1;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->work, NULL);
	for (int i = 0; i < (threads > 0 ? threads : 1); i++) {
		if (pthread_create(&q->threads[i], NULL, worker, q) != 0) {
			workq_free(q);
			return -1;
		}
		pthread_setname_np(q->threads[i], "coffer-db");
		q->n_threads++;
	}
	*out = q;
	return 0;
}

int workq_submit(struct workq *q, enum workq_lane lane, workq_fn fn, void *arg)
{
	struct lane *l = &q->lanes[lane == WORKQ_BACKGROUND ? WORKQ_BACKGROUND : WORKQ_CALLS];
	pthread_mutex_lock(&q->mu);
	if (q->stop || l->n == q->cap) {
		pthread_mutex_unlock(&q->mu);
		return -1;
	}
	l->ring[(l->head + l->n) % q->cap] = (struct job){fn, arg};
	l->n++;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

size_t workq_backlog(struct workq *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = queued(q);
	pthread_mutex_unlock(&q->mu);
	return n;
}

void workq_free(struct workq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < q->n_threads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_cond_destroy(&q->work);
	pthread_mutex_destroy(&q->mu);
	for (int l = 0; l < WORKQ_LANES; l++)
		free(q->lanes[l].ring);
	free(q->threads);
	free(q);
}
