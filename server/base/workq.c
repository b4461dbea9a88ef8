/* workq.c - the job pool (see workq.h). */
#include "workq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct job {
	workq_fn fn;
	void *arg;
};

struct workq {
	pthread_mutex_t mu;  /* guards everything below */
	pthread_cond_t work; /* signalled when a job is queued or on stop */
	struct job *ring;    /* the queue, a ring of cap entries */
	size_t cap;          /* its room */
	size_t head, n;      /* first job and how many */
	bool stop;           /* no more jobs; threads leave when the queue is empty */
	pthread_t *threads;  /* the workers */
	int n_threads;       /* started */
};

static void *worker(void *arg)
{
	struct workq *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->n == 0 && !q->stop)
			pthread_cond_wait(&q->work, &q->mu);
		if (q->n == 0)
			break;
		struct job j = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->n--;
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
	q->ring = calloc(q->cap, sizeof(*q->ring));
	q->threads = calloc((size_t)(threads > 0 ? threads : 1), sizeof(*q->threads));
	if (q->ring == NULL || q->threads == NULL) {
		free(q->ring);
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
		q->n_threads++;
	}
	*out = q;
	return 0;
}

int workq_submit(struct workq *q, workq_fn fn, void *arg)
{
	pthread_mutex_lock(&q->mu);
	if (q->stop || q->n == q->cap) {
		pthread_mutex_unlock(&q->mu);
		return -1;
	}
	q->ring[(q->head + q->n) % q->cap] = (struct job){fn, arg};
	q->n++;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

size_t workq_backlog(struct workq *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = q->n;
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
	free(q->ring);
	free(q->threads);
	free(q);
}
