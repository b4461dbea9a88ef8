/* waits.c - calls parked for a revision (see waits.h). */
#include "waits.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "listener.h"
#include "clock.h"

/* How often a parked call looks again when nothing woke it. */
#define POLL_MS      500
#define SEEN_BUCKETS 1024

/* The newest revision heard of for a project: a call that parks after its project moved on (the
 * news came while it was reading) is woken at once. */
struct seen {
	int64_t project_id, revision;
	uint64_t seq; /* when it was heard */
	struct seen *next;
};

struct waits {
	waits_wake_fn wake;              /* what waking does */
	void *arg;                       /* its argument */
	pthread_t thread;                /* wakes calls whose time is up */
	pthread_mutex_t mu;              /* guards the list and stop */
	pthread_cond_t cv;               /* signalled when the list or stop changes */
	struct wait *head;               /* parked calls */
	size_t n;                        /* how many */
	bool stop;                       /* leave */
	uint64_t seq;                    /* news heard so far */
	struct seen *seen[SEEN_BUCKETS]; /* newest revisions heard of */
};

static struct seen **seen_slot(struct waits *ws, int64_t project_id)
{
	uint64_t h = (uint64_t)project_id * 0x9E3779B97F4A7C15ull;
	struct seen **pp = &ws->seen[(h >> 32) & (SEEN_BUCKETS - 1)];
	while (*pp && (*pp)->project_id != project_id)
		pp = &(*pp)->next;
	return pp;
}

static void unlink_node(struct waits *ws, struct wait *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		ws->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	ws->n--;
}

/* With the lock held: moves every node that `pick` selects to a list of its own. */
static struct wait *take(struct waits *ws, bool (*pick)(const struct wait *, const void *),
                         const void *arg)
{
	struct wait *out = NULL;
	for (struct wait *w = ws->head, *next; w; w = next) {
		next = w->next;
		if (!pick(w, arg))
			continue;
		unlink_node(ws, w);
		w->next = out;
		out = w;
	}
	return out;
}

static void wake_list(struct waits *ws, struct wait *list)
{
	for (struct wait *w = list, *next; w; w = next) {
		next = w->next;
		w->next = NULL;
		ws->wake(w->call, ws->arg);
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

/* With the lock held: forgets every revision heard of. */
static void forget_seen(struct waits *ws)
{
	for (size_t i = 0; i < SEEN_BUCKETS; i++) {
		for (struct seen *x = ws->seen[i], *next; x; x = next) {
			next = x->next;
			free(x);
		}
		ws->seen[i] = NULL;
	}
}

static void *timer(void *arg)
{
	struct waits *ws = arg;
	pthread_mutex_lock(&ws->mu);
	while (!ws->stop) {
		int64_t now = clock_mono_ms(), next = now + POLL_MS;
		for (struct wait *w = ws->head; w; w = w->next) {
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
		struct wait *list = take(ws, due, &now);
		pthread_mutex_unlock(&ws->mu);
		wake_list(ws, list);
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
	pthread_mutex_init(&ws->mu, NULL);
	pthread_cond_init(&ws->cv, NULL);
	if (pthread_create(&ws->thread, NULL, timer, ws) != 0) {
		free(ws);
		return -1;
	}
	*out = ws;
	return 0;
}

void waits_wake_all(struct waits *ws)
{
	pthread_mutex_lock(&ws->mu);
	struct wait *list = take(ws, any, NULL);
	pthread_mutex_unlock(&ws->mu);
	wake_list(ws, list);
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
	struct seen *heard = *seen_slot(ws, project_id);
	if (heard && heard->revision >= revision && heard->seq > seq) {
		pthread_mutex_unlock(&ws->mu);
		ws->wake(call, ws->arg);
		return;
	}
	node->next = ws->head;
	if (ws->head)
		ws->head->prev = node;
	ws->head = node;
	ws->n++;
	pthread_cond_signal(&ws->cv);
	pthread_mutex_unlock(&ws->mu);
}

void waits_changed(struct waits *ws, int64_t project_id, int64_t revision)
{
	struct change c = {project_id, revision};
	pthread_mutex_lock(&ws->mu);
	ws->seq++;
	if (project_id > 0) {
		struct seen **pp = seen_slot(ws, project_id);
		if (*pp == NULL && (*pp = calloc(1, sizeof(**pp))) != NULL)
			(*pp)->project_id = project_id;
		if (*pp && revision > (*pp)->revision) {
			(*pp)->revision = revision;
			(*pp)->seq = ws->seq;
		}
	}
	bool moved = project_id == 0 && revision == LISTENER_NEW_HISTORY;
	if (moved) /* revisions heard of before may never have been on this history */
		forget_seen(ws);
	struct wait *list = ws->n ? take(ws, satisfied, &c) : NULL;
	for (struct wait *w = list; w; w = w->next)
		w->history_moved = moved;
	pthread_mutex_unlock(&ws->mu);
	wake_list(ws, list);
}

size_t waits_count(struct waits *ws)
{
	pthread_mutex_lock(&ws->mu);
	size_t n = ws->n;
	pthread_mutex_unlock(&ws->mu);
	return n;
}
