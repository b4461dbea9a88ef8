/*
 * watch.c - Secrets/WatchSecrets: one watcher per stream, kept in a registry per replica.
 *
 * A watcher holds the effective state it last told its client about (row identities, no value:
 * watch.h) and the revision of it. Opening is audited (fail closed: no row, no stream); then a
 * job on a database thread computes the first message (what changed since from_revision, or a
 * heartbeat with the current revision). Each project change this replica hears of (the
 * listener's notifications, its own commits) marks the project's watchers dirty and gives each
 * one job that reads the state now (from the cache when it holds it) and sends the names that
 * differ; changes that arrive while a job runs are folded into one more job. A thread sends
 * heartbeats to watchers that have been quiet for --watch-heartbeat-seconds. No thread waits on a
 * stream: a client that does not keep up (more than WATCH_QUEUE messages not taken) is told
 * RESOURCE_EXHAUSTED and resumes from its last revision; a client that goes away ends its
 * watcher.
 */
#include "watches.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "resolve.h"
#include "status.h"
#include "watch.h"
#include "workq.h"

/* Messages a client may leave untaken before it is cut off (it resumes where it was). */
#define WATCH_QUEUE 16

struct watcher {
	struct watches *ws;           /* the registry */
	struct call *c;               /* the call (policy, caller, audit row) */
	struct rpc_stream *st;        /* its stream */
	char project[MODEL_NAME_MAX]; /* what it watches */
	char environment[MODEL_NAME_MAX];
	int version;
	char **names; /* the names asked for (copies); none: all */
	size_t n_names;
	int64_t from;                /* from_revision (the first message only) */
	int64_t project_id;          /* the project it watches (0 until known) */
	int64_t revision;            /* the revision its client knows */
	struct cached_rows *state;   /* the state its client knows */
	int64_t last_sent_ms;        /* monotonic */
	char token_id[32];           /* whose stream it is */
	int refs;                    /* the stream, and each job or opening under way */
	bool registered;             /* in the registry's list */
	bool started;                /* the first message went out */
	bool busy;                   /* a job is under way */
	bool dirty;                  /* a change came while it was */
	bool done;                   /* the stream is over */
	int done_code;               /* how it ended */
	struct watcher *prev, *next; /* the registry's list */
};

struct watches {
	struct api *api;      /* calls, domain, audit, jobs */
	int heartbeat_ms;     /* quiet streams get a heartbeat after this long */
	int per_token;        /* streams a token may hold at once */
	pthread_mutex_t mu;   /* guards the list and every watcher's fields */
	pthread_cond_t cv;    /* wakes the heartbeat thread to leave */
	struct watcher *head; /* registered watchers */
	size_t n;             /* how many */
	pthread_t thread;     /* heartbeats */
	bool stop;            /* leave */
};

/* With the lock held: drops a reference; the last ends the call and frees the watcher. Returns
 * whether it was the last (the caller must then call finish_watcher outside the lock). */
static bool unref_locked(struct watcher *w)
{
	return --w->refs == 0;
}

/* The last reference is gone: the stream and the call are done with. */
static void finish_watcher(struct watcher *w)
{
	cached_rows_unref(w->state);
	for (size_t i = 0; i < w->n_names; i++)
		free(w->names[i]);
	free(w->names);
	api_stream_done(w->c, w->done_code);
	free(w);
}

static void unref(struct watcher *w)
{
	pthread_mutex_lock(&w->ws->mu);
	bool last = unref_locked(w);
	pthread_mutex_unlock(&w->ws->mu);
	if (last)
		finish_watcher(w);
}

/* Sends one message; false when the stream is over or the client does not keep up (then it is
 * ended: the client resumes from the last revision it saw). */
static bool send_change(struct watcher *w, int64_t revision, const char *const *changed,
                        size_t n_changed, bool resync, bool heartbeat)
{
	Coffer__V1__SecretsChange m = COFFER__V1__SECRETS_CHANGE__INIT;
	m.revision = revision;
	m.changed = (char **)changed;
	m.n_changed = n_changed;
	m.resync = resync;
	m.heartbeat = heartbeat;
	if (rpc_stream_send(w->st, &m.base, WATCH_QUEUE) == 0) {
		pthread_mutex_lock(&w->ws->mu);
		w->last_sent_ms = clock_mono_ms();
		pthread_mutex_unlock(&w->ws->mu);
		return true;
	}
	rpc_stream_fail(w->st, RPC_RESOURCE_EXHAUSTED,
	                "the client does not take its changes: resume from revision %lld",
	                (long long)w->revision);
	return false;
}

/* Ends the stream with an error (logged without values). */
static void fail(struct watcher *w, const struct cof_err *e)
{
	int code = e->code == COF_EPRECOND ? RPC_FAILED_PRECONDITION : status_from_code(e->code);
	if (e->detail[0])
		log_warn("WatchSecrets: %s (%s)", e->msg, e->detail);
	rpc_stream_fail(w->st, code, "%s", e->msg[0] ? e->msg : rpc_code_name(code));
}

/* The first message: what changed since from_revision, or the revision it starts at. */
static int first(struct watcher *w, struct session *ss, struct cof_err *e)
{
	struct cached_rows *then = NULL, *now = NULL;
	char **touched = NULL;
	size_t n_touched = 0;
	int rc;
	if (w->from > 0) {
		rc = watch_since(ss, w->project, w->environment, w->version, w->from, &then, &now,
		                 &touched, &n_touched, e);
		if (rc == COF_EPRECOND) { /* cannot be told: everything again */
			rc = resolve_state(ss, w->project, w->environment, w->version, &now, e);
			if (rc == 0 && send_change(w, now->revision, NULL, 0, true, false))
				goto keep;
			goto out;
		}
	} else {
		rc = resolve_state(ss, w->project, w->environment, w->version, &now, e);
	}
	if (rc)
		goto out;
	if (w->from > 0) {
		const char **changed = NULL;
		size_t n = 0;
		if (watch_diff(then, now, touched, n_touched, (const char *const *)w->names,
		               w->n_names, &changed, &n) != 0) {
			rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
			goto out;
		}
		bool sent = send_change(w, now->revision, changed, n, false, n == 0);
		free(changed);
		if (!sent)
			goto out;
	} else if (!send_change(w, now->revision, NULL, 0, false, true)) {
		goto out;
	}
keep:
	pthread_mutex_lock(&w->ws->mu);
	w->project_id = now->project_id;
	w->revision = now->revision;
	w->state = now;
	w->started = true;
	pthread_mutex_unlock(&w->ws->mu);
	now = NULL;
out:
	cached_rows_unref(then);
	cached_rows_unref(now);
	watch_names_free(touched, n_touched);
	return rc;
}

/* A later message: the names that differ between what the client knows and now. */
static int update(struct watcher *w, struct session *ss, struct cof_err *e)
{
	struct cached_rows *now = NULL;
	int rc = resolve_state(ss, w->project, w->environment, w->version, &now, e);
	if (rc)
		return rc;
	if (now->project_id != w->project_id) { /* deleted and made again: another project */
		bool sent = send_change(w, now->revision, NULL, 0, true, false);
		pthread_mutex_lock(&w->ws->mu);
		cached_rows_unref(w->state);
		w->state = now;
		w->project_id = now->project_id;
		w->revision = now->revision;
		pthread_mutex_unlock(&w->ws->mu);
		return sent ? 0 : COF_EUNAVAIL;
	}
	if (now->revision <= w->revision) {
		cached_rows_unref(now);
		return 0;
	}
	const char **changed = NULL;
	size_t n = 0;
	if (watch_diff(w->state, now, NULL, 0, (const char *const *)w->names, w->n_names, &changed,
	               &n) != 0) {
		cached_rows_unref(now);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	bool sent = n == 0 || send_change(w, now->revision, changed, n, false, false);
	free(changed);
	pthread_mutex_lock(&w->ws->mu);
	cached_rows_unref(w->state);
	w->state = now;
	w->revision = now->revision;
	pthread_mutex_unlock(&w->ws->mu);
	return sent ? 0 : COF_EUNAVAIL;
}

static void job(void *arg);

/* With the lock held: gives w a job unless one is under way (then it runs again after it).
 * Returns whether the caller must submit one (outside the lock). */
static bool want_job(struct watcher *w)
{
	if (w->done)
		return false;
	if (w->busy) {
		w->dirty = true;
		return false;
	}
	w->busy = true;
	w->refs++;
	return true;
}

static void submit(struct watcher *w)
{
	if (workq_submit(w->ws->api->jobs, job, w) == 0)
		return;
	rpc_stream_fail(w->st, RPC_UNAVAILABLE, "this replica is too busy; reconnect");
	pthread_mutex_lock(&w->ws->mu);
	w->busy = false;
	bool last = unref_locked(w);
	pthread_mutex_unlock(&w->ws->mu);
	if (last)
		finish_watcher(w);
}

static void job(void *arg)
{
	struct watcher *w = arg;
	struct api *a = w->ws->api;
	for (;;) {
		struct session ss;
		struct cof_err e = {0};
		bool stop = false;
		if (session_open(a->domain, a->cfg.statement_timeout_ms, &ss, &e) != 0) {
			fail(w, &e);
			stop = true;
		} else {
			pthread_mutex_lock(&w->ws->mu);
			bool started = w->started, done = w->done;
			pthread_mutex_unlock(&w->ws->mu);
			int rc = done ? 0 : started ? update(w, &ss, &e) : first(w, &ss, &e);
			session_close(&ss);
			if (rc && rc != COF_EUNAVAIL)
				fail(w, &e);
			stop = rc != 0; /* ended, or the client was cut off */
		}
		/* Changes that came meanwhile are folded into one more pass. */
		pthread_mutex_lock(&w->ws->mu);
		bool again = !stop && w->dirty && !w->done;
		w->dirty = false;
		w->busy = again;
		bool last = again ? false : unref_locked(w);
		pthread_mutex_unlock(&w->ws->mu);
		if (again)
			continue;
		if (last)
			finish_watcher(w);
		return;
	}
}

/* The stream is over (the client left, or it was ended). */
static void on_done(struct rpc_stream *st, int code, void *arg)
{
	(void)st;
	struct watcher *w = arg;
	struct watches *ws = w->ws;
	pthread_mutex_lock(&ws->mu);
	w->done = true;
	w->done_code = code;
	if (w->registered) {
		if (w->prev)
			w->prev->next = w->next;
		else
			ws->head = w->next;
		if (w->next)
			w->next->prev = w->prev;
		w->registered = false;
		ws->n--;
	}
	bool last = unref_locked(w);
	pthread_mutex_unlock(&ws->mu);
	if (last)
		finish_watcher(w);
}

static const struct rpc_stream_handlers watch_handlers = {NULL, on_done};

/* The opening's audit row is stored (status 0), or cannot be: no row, no stream. */
static void opened(void *arg, int status)
{
	struct watcher *w = arg;
	struct watches *ws = w->ws;
	if (status != 0) {
		metrics_audit_failure(ws->api->metrics);
		rpc_stream_fail(w->st, RPC_UNAVAILABLE, "the audit log is unavailable");
		unref(w);
		return;
	}
	pthread_mutex_lock(&ws->mu);
	bool go = false;
	if (!w->done) {
		w->registered = true;
		w->next = ws->head;
		if (ws->head)
			ws->head->prev = w;
		ws->head = w;
		ws->n++;
		go = want_job(w);
	}
	bool last = unref_locked(w);
	pthread_mutex_unlock(&ws->mu);
	if (go)
		submit(w);
	if (last)
		finish_watcher(w);
}

int watch_open(struct watches *ws, struct call *c, const Coffer__V1__WatchSecretsRequest *req,
               struct rpc_stream *st)
{
	/* A stream counts against its token: at most per_token at once. */
	pthread_mutex_lock(&ws->mu);
	int held = 0;
	for (struct watcher *x = ws->head; x; x = x->next)
		held += strcmp(x->token_id, c->audit.token_id) == 0;
	pthread_mutex_unlock(&ws->mu);
	if (held >= ws->per_token)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED,
		                 "token %s holds %d watch streams on this replica, the most it may",
		                 c->audit.token_id, ws->per_token);
	struct watcher *w = calloc(1, sizeof(*w));
	if (w == NULL ||
	    (req->n_names && (w->names = calloc(req->n_names, sizeof(char *))) == NULL))
		goto oom;
	for (size_t i = 0; i < req->n_names; i++) {
		if ((w->names[i] = strdup(req->names[i])) == NULL)
			goto oom;
		w->n_names++;
	}
	w->ws = ws;
	w->c = c;
	w->st = st;
	snprintf(w->project, sizeof(w->project), "%s", req->project);
	snprintf(w->environment, sizeof(w->environment), "%s", req->environment);
	w->version = req->version;
	w->from = req->from_revision;
	w->last_sent_ms = clock_mono_ms();
	snprintf(w->token_id, sizeof(w->token_id), "%s", c->audit.token_id);
	w->refs = 2; /* the stream, and the opening */
	w->done_code = RPC_OK;
	c->audited = true; /* the opening is the stream's one row */
	c->audit.code = RPC_OK;
	rpc_stream_start(st, &watch_handlers, w, false);
	if (audit_submit(c->api->audit, &c->audit, opened, w) != 0)
		opened(w, COF_EUNAVAIL);
	return RPC_PENDING;
oom:
	if (w)
		for (size_t i = 0; i < w->n_names; i++)
			free(w->names[i]);
	free(w ? w->names : NULL);
	free(w);
	return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
}

void watch_changed(struct watches *ws, int64_t project_id, int64_t revision)
{
	(void)revision;
	pthread_mutex_lock(&ws->mu);
	struct watcher **todo = ws->n ? calloc(ws->n, sizeof(*todo)) : NULL;
	size_t n = 0;
	for (struct watcher *w = ws->head; w; w = w->next) {
		if (project_id != 0 && w->started && w->project_id != project_id)
			continue;
		if (!w->started && w->busy)
			continue; /* its first message reads the state after this change anyway */
		if (todo == NULL) /* out of memory: the next heartbeat pass catches up */
			w->dirty = true;
		else if (want_job(w))
			todo[n++] = w;
	}
	pthread_mutex_unlock(&ws->mu);
	for (size_t i = 0; i < n; i++)
		submit(todo[i]);
	free(todo);
}

/* Heartbeats to quiet streams (and a pass for a watcher marked dirty without a job). */
static void *heartbeats(void *arg)
{
	struct watches *ws = arg;
	pthread_mutex_lock(&ws->mu);
	while (!ws->stop) {
		struct timespec until = clock_realtime_after_ms(1000);
		pthread_cond_timedwait(&ws->cv, &ws->mu, &until);
		int64_t t = clock_mono_ms();
		for (;;) {
			struct watcher *due = NULL;
			bool run = false;
			for (struct watcher *w = ws->head; w && !due; w = w->next) {
				if (w->done || !w->started || w->busy)
					continue;
				if (w->dirty) {
					w->dirty = false;
					run = want_job(w);
					due = w;
				} else if (t - w->last_sent_ms >= ws->heartbeat_ms) {
					w->refs++;
					w->last_sent_ms = t;
					due = w;
				}
			}
			if (due == NULL)
				break;
			int64_t rev = due->revision;
			pthread_mutex_unlock(&ws->mu);
			if (run) {
				submit(due);
			} else {
				send_change(due, rev, NULL, 0, false, true);
				unref(due);
			}
			pthread_mutex_lock(&ws->mu);
		}
	}
	pthread_mutex_unlock(&ws->mu);
	return NULL;
}

int watches_new(struct api *api, int heartbeat_ms, int per_token, struct watches **out)
{
	*out = NULL;
	struct watches *ws = calloc(1, sizeof(*ws));
	if (ws == NULL)
		return -1;
	ws->api = api;
	ws->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 15000;
	ws->per_token = per_token > 0 ? per_token : 256;
	pthread_mutex_init(&ws->mu, NULL);
	pthread_cond_init(&ws->cv, NULL);
	if (pthread_create(&ws->thread, NULL, heartbeats, ws) != 0) {
		free(ws);
		return -1;
	}
	*out = ws;
	return 0;
}

void watches_end_all(struct watches *ws)
{
	pthread_mutex_lock(&ws->mu);
	for (struct watcher *w = ws->head; w; w = w->next) {
		rpc_stream_fail(
		        w->st, RPC_UNAVAILABLE,
		        "this replica is shutting down: resume from revision %lld on another",
		        (long long)w->revision);
	}
	pthread_mutex_unlock(&ws->mu);
}

size_t watches_count(struct watches *ws)
{
	pthread_mutex_lock(&ws->mu);
	size_t n = ws->n;
	pthread_mutex_unlock(&ws->mu);
	return n;
}

void watches_free(struct watches *ws)
{
	if (ws == NULL)
		return;
	pthread_mutex_lock(&ws->mu);
	ws->stop = true;
	pthread_cond_broadcast(&ws->cv);
	pthread_mutex_unlock(&ws->mu);
	pthread_join(ws->thread, NULL);
	pthread_cond_destroy(&ws->cv);
	pthread_mutex_destroy(&ws->mu);
	free(ws);
}
