/* ratelimit.c - token buckets (see ratelimit.h). */
#include "ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 4096

struct bucket {
	char id[64];  /* token id or peer address; "" when free */
	double level; /* calls available */
	double last;  /* monotonic seconds of the last refill */
};

struct ratelimit {
	int rate;                       /* calls per second */
	double cap;                     /* bucket size */
	pthread_mutex_t mu;             /* guards buckets */
	struct bucket buckets[BUCKETS]; /* by hash of the id */
};

int ratelimit_new(int rate, int burst, struct ratelimit **out, struct cof_err *e)
{
	*out = NULL;
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	rl->rate = rate;
	rl->cap = burst > 0 ? burst : 2.0 * rate;
	pthread_mutex_init(&rl->mu, NULL);
	*out = rl;
	return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

/* With the lock held: id's bucket, refilled to now. */
static struct bucket *refill(struct ratelimit *rl, const char *id)
{
	unsigned h = 5381;
	for (const char *p = id; *p; p++)
		h = h * 33 + (unsigned char)*p;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double t = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	struct bucket *b = &rl->buckets[h % BUCKETS];
	if (strcmp(b->id, id) != 0) {
		snprintf(b->id, sizeof(b->id), "%s", id);
		b->level = rl->cap;
		b->last = t;
	}
	b->level += (t - b->last) * rl->rate;
	if (b->level > rl->cap)
		b->level = rl->cap;
	b->last = t;
	return b;
}

bool ratelimit_allows(struct ratelimit *rl, const char *id)
{
	pthread_mutex_lock(&rl->mu);
	bool ok = refill(rl, id)->level >= 1.0;
	pthread_mutex_unlock(&rl->mu);
	return ok;
}

bool ratelimit_take(struct ratelimit *rl, const char *id)
{
	pthread_mutex_lock(&rl->mu);
	struct bucket *b = refill(rl, id);
	bool ok = b->level >= 1.0;
	if (ok)
		b->level -= 1.0;
	pthread_mutex_unlock(&rl->mu);
	return ok;
}
