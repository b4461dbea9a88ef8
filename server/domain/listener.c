/* listener.c - the listener (see listener.h). */
#include "listener.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "clock.h"
#include "log.h"
#include "store.h"

#define CHANNEL "coffer_changes"
#define WAIT_MS 250
/* A ping (bounded by 2 s in the store) when nothing was heard for this long: the cache is off
 * within 2.5 s of the database going silent. */
#define PING_MS     500
#define READY_MS    3000
#define BACKOFF_MIN 100
#define BACKOFF_MAX 2000

struct listener {
	char *url;                   /* the database */
	struct cache *cache;         /* what the changes apply to */
	pthread_t thread;            /* the listener */
	pthread_mutex_t mu;          /* guards stop and the hook */
	pthread_cond_t cv;           /* wakes a backoff sleep on stop */
	bool stop;                   /* leave */
	struct listener_hooks hooks; /* project and token changes go there too */
	atomic_bool listening;       /* the cache is coherent */
	atomic_llong last_ok_ms;     /* when the database last answered */
	struct store_identity id; /* the history the listener was last on (timeline 0: none yet) */
};

static void call_hook(struct listener *ch, int64_t project_id, int64_t revision)
{
	pthread_mutex_lock(&ch->mu);
	struct listener_hooks h = ch->hooks;
	pthread_mutex_unlock(&ch->mu);
	if (h.project)
		h.project(h.arg, project_id, revision);
}

static void call_token_hook(struct listener *ch, const char *token_id)
{
	pthread_mutex_lock(&ch->mu);
	struct listener_hooks h = ch->hooks;
	pthread_mutex_unlock(&ch->mu);
	if (h.token)
		h.token(h.arg, token_id);
}

void listener_apply(struct listener *ch, const char *payload)
{
	int64_t id = 0, rev = 0;
	char token[40];
	if (sscanf(payload, "p %" SCNd64 " %" SCNd64, &id, &rev) == 2 && id > 0) {
		cache_project_changed(ch->cache, id, rev);
		call_hook(ch, id, rev);
	} else if (sscanf(payload, "t %39s", token) == 1) {
		cache_token_changed(ch->cache, token);
		call_token_hook(ch, token);
	} else if (strcmp(payload, "k") == 0) {
		cache_keyring_changed(ch->cache);
	} else {
		log_warn("changes: ignored a notification of an unknown kind");
	}
}

static void on_note(void *arg, const char *payload)
{
	struct listener *ch = arg;
	atomic_store(&ch->last_ok_ms, clock_mono_ms());
	listener_apply(ch, payload);
}

/* After a (re)connection: whether the server is on another history than before (a failover to
 * another timeline, a restored backup): what was heard before may never have happened there. */
static bool new_history(struct listener *ch, struct store *s)
{
	struct store_identity now;
	struct cof_err e = {0};
	if (store_identity(s, &now, &e) != 0) {
		log_warn("changes: cannot tell the database's timeline (%s)", e.detail);
		return ch->id.timeline != 0; /* in doubt: as if it moved */
	}
	bool moved = ch->id.timeline != 0 && (now.timeline != ch->id.timeline ||
	                                      strcmp(now.system_id, ch->id.system_id) != 0);
	if (moved)
		log_warn("changes: the database is on another history (timeline %lld, was %lld; "
		         "system %s, was %s): every cache is dropped, watches resync and calls "
		         "waiting for a revision are answered",
		         (long long)now.timeline, (long long)ch->id.timeline,
		         now.system_id[0] ? now.system_id : "?",
		         ch->id.system_id[0] ? ch->id.system_id : "?");
	ch->id = now;
	return moved;
}

/* Sleeps ms unless stopped; whether to go on. */
static bool nap(struct listener *ch, int ms)
{
	struct timespec until = clock_realtime_after_ms(ms);
	pthread_mutex_lock(&ch->mu);
	if (!ch->stop)
		pthread_cond_timedwait(&ch->cv, &ch->mu, &until);
	bool go_on = !ch->stop;
	pthread_mutex_unlock(&ch->mu);
	return go_on;
}

static bool stopping(struct listener *ch)
{
	pthread_mutex_lock(&ch->mu);
	bool s = ch->stop;
	pthread_mutex_unlock(&ch->mu);
	return s;
}

static void *listener(void *arg)
{
	struct listener *ch = arg;
	struct store *s = NULL;
	int backoff = BACKOFF_MIN;
	bool warned = false;
	while (!stopping(ch)) {
		struct cof_err e = {0};
		if (s == NULL) {
			if (store_listen(ch->url, CHANNEL, &s, &e) != 0) {
				store_close(s);
				s = NULL;
				if (!warned)
					log_warn("changes: cannot listen (%s); the cache stays off "
					         "until the database answers",
					         e.detail[0] ? e.detail : e.msg);
				warned = true;
				if (!nap(ch, backoff))
					break;
				backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
				continue;
			}
			backoff = BACKOFF_MIN;
			bool moved = new_history(ch, s);
			atomic_store(&ch->last_ok_ms, clock_mono_ms());
			/* LISTEN is in force: from here on no change is missed. Start a new
			 * generation so that nothing read before it is kept. */
			cache_enable(ch->cache);
			atomic_store(&ch->listening, true);
			if (warned)
				log_info("changes: listening again; the cache serves");
			warned = false;
			/* Anything may have changed while we were away. */
			call_hook(ch, 0, moved ? LISTENER_NEW_HISTORY : 0);
		}
		int rc = store_listen_wait(s, WAIT_MS, on_note, ch, &e);
		if (rc == 0 && clock_mono_ms() - atomic_load(&ch->last_ok_ms) >= PING_MS) {
			rc = store_listen_ping(s, &e);
			if (rc == 0)
				atomic_store(&ch->last_ok_ms, clock_mono_ms());
			/* No answer in time: the server may hang (a frozen primary). The other
			 * connections to it are given up too, and made again to whichever host
			 * of the URL answers. */
			if (rc == COF_EDEADLINE)
				store_abandon_all();
		}
		if (rc != 0) {
			atomic_store(&ch->listening, false);
			cache_disable(ch->cache);
			log_warn("changes: lost the notification connection (%s); the cache is off "
			         "until it is back",
			         e.detail[0] ? e.detail : e.msg);
			warned = true;
			store_close(s);
			s = NULL;
		}
	}
	atomic_store(&ch->listening, false);
	store_close(s);
	return NULL;
}

int listener_start(const char *url, struct cache *cache, struct listener **out, struct cof_err *e)
{
	*out = NULL;
	struct listener *ch = calloc(1, sizeof(*ch));
	if (ch == NULL || (ch->url = strdup(url ? url : "")) == NULL) {
		free(ch);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	ch->cache = cache;
	pthread_mutex_init(&ch->mu, NULL);
	pthread_cond_init(&ch->cv, NULL);
	if (pthread_create(&ch->thread, NULL, listener, ch) != 0) {
		free(ch->url);
		free(ch);
		return cof_err_set(e, COF_EINTERNAL, "cannot start the change listener");
	}
	pthread_setname_np(ch->thread, "coffer-listen");
	*out = ch;
	return 0;
}

void listener_stop(struct listener *ch)
{
	if (ch == NULL)
		return;
	pthread_mutex_lock(&ch->mu);
	ch->stop = true;
	pthread_cond_broadcast(&ch->cv);
	pthread_mutex_unlock(&ch->mu);
	pthread_join(ch->thread, NULL);
	pthread_cond_destroy(&ch->cv);
	pthread_mutex_destroy(&ch->mu);
	free(ch->url);
	free(ch);
}

void listener_set_hooks(struct listener *ch, const struct listener_hooks *h)
{
	pthread_mutex_lock(&ch->mu);
	ch->hooks = h ? *h : (struct listener_hooks){0};
	pthread_mutex_unlock(&ch->mu);
}

bool listener_listening(struct listener *ch)
{
	return atomic_load(&ch->listening);
}

bool listener_db_ready(struct listener *ch)
{
	return atomic_load(&ch->listening) &&
	       clock_mono_ms() - atomic_load(&ch->last_ok_ms) < READY_MS;
}
