/* waits.c - calls parked for a revision (see waits.h). */
#include "waits.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "hash.h"
#include "listener.h"

/* How often a parked call looks again when nothing woke it. */
#define POLL_MS     500
#define SEEN_CHAINS 1024

/* The newest revision heard of for a project: a call that parks after its project moved on (the
 * news came while it was reading) is woken at once. */
struct seen {
	struct hash_node node; /* in seen, by project_id */
	int64_t project_id;    /* the project */
	int64_t revision;      /* the newest revision heard of */
	uint64_t seq;          /* when it was heard */
};

struct waits {
	waits_wake_fn wake;      /* what waking does */
	void *arg;               /* its argument */
	pthread_t thread;        /* wakes calls whose time is up */
	pthread_mutex_t mu;      /* guards the list and stop */
	pthread_cond_t cv;       /* signalled when the list or stop changes */
	struct list_node parked; /* parked calls (struct wait) */
	size_t n;                /* how many */
	bool stop;               /* leave */
	uint64_t seq;            /* news heard so far */
	struct hash seen;        /* newest revisions heard of (struct seen) */
};

/* With the lock held: what was heard of project_id, made when make and not known; or NULL. */
static struct seen *seen_of(struct waits *ws, int64_t project_id, bool make)
{
	uint64_t h = hash_u64((uint64_t)project_id);
	for (struct hash_node *n = hash_first(&ws->seen, h); n; n = hash_next(n)) {
		struct seen *x = hash_entry(n, struct seen, node);
		if (x->project_id == project_id)
			return x;
	}
	struct seen *x = make ? calloc(1, sizeof(*x)) : NULL;
	if (x != NULL) {
		x->project_id = project_id;
		hash_add(&ws->seen, &x->node, h);
	}
	return x;
}

/* With the lock held: moves every parked call that `pick` selects to the list out. */
static void take(struct waits *ws, bool (*pick)(const struct wait *, const void *), const void *arg,
                 struct list_node *out)
{
	list_init(out);
	struct list_node *n, *tmp;
	list_for_each_safe(n, tmp, &ws->parked)
	{
		struct wait *w = list_entry(n, struct wait, node);
		if (!pick(w, arg))
			continue;
		list_remove(n);
		list_add_tail(out, n);
		ws->n--;
	}
}

/* Without the lock: wakes every call of the list (each may be freed by its waking). */
static void wake_list(struct waits *ws, struct list_node *list)
{
	struct list_node *n, *tmp;
	list_for_each_safe(n, tmp, list)
	{
		list_remove(n);
		ws->wake(list_entry(n, struct wait, node)->call, ws->arg);
	}
}

static bool due(const struct wait *w, const void *arg)
{
	int64_t now = *(const int64_t *)arg;
	return now >= w->deadline_ms || now >= w->next_check_ms;
}

static bool any(const struct wait *w, const void *arg)
{
	(void)w;
	(void)arg;
	return true;
}

struct change {
	int64_t project_id, revision;
};

static bool satisfied(const struct wait *w, const void *arg)
{
	const struct change *c = arg;
	return c->project_id == 0 || (w->project_id == c->project_id && c->revision >= w->revision);
}

static bool drop_seen(struct hash_node *n, void *arg)
{
	(void)arg;
	free(hash_entry(n, struct seen, node));
	return true;
}

/* With the lock held: forgets every revision heard of. */
static void forget_seen(struct waits *ws)
{
	hash_sweep(&ws->seen, 0, drop_seen, NULL, NULL);
}

static void *timer(void *arg)
{
	struct waits *ws = arg;
	pthread_mutex_lock(&ws->mu);
	while (!ws->stop) {
		int64_t now = clock_mono_ms(), next = now + POLL_MS;
		struct list_node *n;
		list_for_each(n, &ws->parked)
		{
			const struct wait *w = list_entry(n, struct wait, node);
			if (w->deadline_ms < next)
				next = w->deadline_ms;
			if (w->next_check_ms < next)
				next = w->next_check_ms;
		}
		if (next > now) {
			struct timespec until = clock_realtime_after_ms(next - now);
			pthread_cond_timedwait(&ws->cv, &ws->mu, &until);
			continue;
		}
		struct list_node list;
		take(ws, due, &now, &list);
		pthread_mutex_unlock(&ws->mu);
		wake_list(ws, &list);
		pthread_mutex_lock(&ws->mu);
	}
	pthread_mutex_unlock(&ws->mu);
	return NULL;
}

int waits_new(waits_wake_fn wake, void *arg, struct waits **out)
{
	*out = NULL;
	struct waits *ws = calloc(1, sizeof(*ws));
	if (ws == NULL)
		return -1;
	ws->wake = wake;
	ws->arg = arg;
	list_init(&ws->parked);
	if (hash_init(&ws->seen, SEEN_CHAINS) != 0) {
		free(ws);
		return -1;
	}
	pthread_mutex_init(&ws->mu, NULL);
	pthread_cond_init(&ws->cv, NULL);
	if (pthread_create(&ws->thread, NULL, timer, ws) != 0) {
		pthread_cond_destroy(&ws->cv);
		pthread_mutex_destroy(&ws->mu);
		hash_destroy(&ws->seen);
		free(ws);
		return -1;
	}
	*out = ws;
	return 0;
}

void waits_wake_all(struct waits *ws)
{
	struct list_node list;
	pthread_mutex_lock(&ws->mu);
	take(ws, any, NULL, &list);
	pthread_mutex_unlock(&ws->mu);
	wake_list(ws, &list);
}

void waits_free(struct waits *ws)
{
	if (ws == NULL)
		return;
	pthread_mutex_lock(&ws->mu);
	ws->stop = true;
	pthread_cond_broadcast(&ws->cv);
	pthread_mutex_unlock(&ws->mu);
	pthread_join(ws->thread, NULL);
	waits_wake_all(ws);
	forget_seen(ws);
	hash_destroy(&ws->seen);
	pthread_cond_destroy(&ws->cv);
	pthread_mutex_destroy(&ws->mu);
	free(ws);
}

uint64_t waits_seq(struct waits *ws)
{
	pthread_mutex_lock(&ws->mu);
	uint64_t seq = ws->seq;
	pthread_mutex_unlock(&ws->mu);
	return seq;
}

void waits_add(struct waits *ws, struct wait *node, void *call, int64_t project_id,
               int64_t revision, int64_t deadline_ms, uint64_t seq)
{
	int64_t now = clock_mono_ms();
	*node = (struct wait){.call = call,
	                      .project_id = project_id,
	                      .revision = revision,
	                      .deadline_ms = deadline_ms,
	                      .next_check_ms = now + POLL_MS};
	pthread_mutex_lock(&ws->mu);
	struct seen *heard = seen_of(ws, project_id, false);
	if (heard && heard->revision >= revision && heard->seq > seq) {
		pthread_mutex_unlock(&ws->mu);
		ws->wake(call, ws->arg);
		return;
	}
	list_add(&ws->parked, &node->node);
	ws->n++;
	pthread_cond_signal(&ws->cv);
	pthread_mutex_unlock(&ws->mu);
}

void waits_changed(struct waits *ws, int64_t project_id, int64_t revision)
{
	struct change c = {project_id, revision};
	pthread_mutex_lock(&ws->mu);
	ws->seq++;
	struct seen *x = project_id > 0 ? seen_of(ws, project_id, true) : NULL;
	if (x && revision > x->revision) {
		x->revision = revision;
		x->seq = ws->seq;
	}
	bool moved = project_id == 0 && revision == LISTENER_NEW_HISTORY;
	if (moved) /* revisions heard of before may never have been on this history */
		forget_seen(ws);
	struct list_node list, *n;
	take(ws, satisfied, &c, &list);
	list_for_each(n, &list) list_entry(n, struct wait, node)->history_moved = moved;
	pthread_mutex_unlock(&ws->mu);
	wake_list(ws, &list);
}

size_t waits_count(struct waits *ws)
{
	pthread_mutex_lock(&ws->mu);
	size_t n = ws->n;
	pthread_mutex_unlock(&ws->mu);
	return n;
}
