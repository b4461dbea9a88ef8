/*
 * watch_streams.c - Secrets/WatchSecrets: the streams of a replica, in groups by what they watch.
 *
 * Every stream of one (project, environment, version) belongs to one group. A group keeps the
 * newest state it read (row identities only, never a value: watch.h), shared by reference with
 * its streams: each stream points at the state its client knows. When the project moves (the
 * listener's notifications, this replica's own commits), the group gets one job on the
 * background lane of the database threads: it reads the state now once (from the cache when it
 * holds it), works out the difference once for every stream that knew the same state, and sends
 * each stream the names it asked for. Changes that arrive while the job runs are folded into one
 * more pass, so an event may cover several revisions and never skips one; a state older than what
 * a client knows (the database failed over to a shorter history) is a resync.
 *
 * Opening is audited (fail closed: no row, no stream), counted against the token's
 * --max-watches-per-token from the moment it is asked for, and bound to the project's id: a
 * stream ends (NOT_FOUND) when its project or environment is deleted, and (UNAUTHENTICATED) when
 * its token is revoked or expires. A stream that resumes from an older revision than its group's
 * gets a job of its own for its first message (what changed since then, from one snapshot).
 *
 * No thread waits on a stream: a client that does not keep up (more than WATCH_QUEUE messages not
 * taken) is told RESOURCE_EXHAUSTED and resumes from its last revision; a thread sends heartbeats
 * to streams quiet for --watch-heartbeat-seconds and ends streams whose token has expired.
 */
#include "watch_streams.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "audit.h"
#include "listener.h"
#include "clock.h"
#include "hash.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "run.h"
#include "status.h"
#include "watch.h"
#include "workq.h"

/* Messages a client may leave untaken before it is cut off (it resumes where it was). */
#define WATCH_QUEUE 16
/* A group whose state could not be read tries again after this long. */
#define RETRY_MS 1000
/* Chains of the per-token stream counts. */
#define TOKEN_CHAINS 256

struct group;

struct watcher {
	struct watch_streams *ws;                   /* the registry */
	struct group *g;                            /* its group, once it has joined */
	struct rpc_stream *st;                      /* its stream */
	struct call *c;                             /* the opening call, until its row is stored */
	const Coffer__V1__WatchSecretsRequest *req; /* what it asked for (the stream's) */
	char **names;                               /* the names asked for (copies); none: all */
	size_t n_names;                             /* entries in names */
	int64_t from;                               /* from_revision (the first message only) */
	struct watch_state *known; /* the state its client knows; NULL before the first message */
	int64_t last_sent_ms;      /* monotonic */
	int64_t expire_us;         /* its token's expiry (wall clock); 0: never */
	char token_id[32];         /* whose stream it is */
	int refs;                  /* the stream, the opening, and each job or send under way */
	bool own_job;              /* its first message is computed by a job of its own */
	bool done;                 /* the stream is over */
	int done_code;             /* how it ended */
	struct list_node node;     /* in its group's members */
};

/* The streams of one (project, environment, version). */
struct group {
	struct watch_streams *ws;         /* the registry */
	char project[LIMIT_NAME_BUF];     /* what they watch */
	char environment[LIMIT_NAME_BUF]; /* in which environment */
	int version;                      /* and version */
	int64_t project_id;               /* the project's id once read (0: not yet) */
	struct watch_state *state;        /* the newest state read, or NULL */
	struct list_node members;         /* its watchers */
	size_t n;                         /* how many */
	int64_t retry_at_ms;              /* its last read failed: look again then (0: no) */
	bool new_history;                 /* the database's history moved: members resync */
	bool busy;                        /* a job is under way */
	bool dirty;                       /* a change came while it was */
	struct list_node node;            /* in the registry's groups */
};

/* Streams held by one token. */
struct token_count {
	struct hash_node node; /* in tokens, by id */
	char id[32];           /* the token's id */
	int n;                 /* its streams, asked for or open */
};

struct watch_streams {
	struct api *api;         /* calls, domain, audit, jobs */
	int heartbeat_ms;        /* quiet streams get a heartbeat after this long */
	int per_token;           /* streams a token may hold at once */
	pthread_mutex_t mu;      /* guards everything below and every watcher */
	pthread_cond_t cv;       /* wakes the heartbeat thread to leave */
	struct list_node groups; /* groups with members or a job */
	size_t n;                /* streams joined */
	struct hash tokens;      /* streams per token (struct token_count) */
	pthread_t thread;        /* heartbeats, expiry, retries */
	bool stop;               /* leave */
};

/* ---- counts per token ---- */

/* With the lock held: the count of token id, or NULL. */
static struct token_count *token_of(struct watch_streams *ws, const char *id)
{
	for (struct hash_node *n = hash_first(&ws->tokens, hash_str(id)); n; n = hash_next(n)) {
		struct token_count *t = hash_entry(n, struct token_count, node);
		if (strcmp(t->id, id) == 0)
			return t;
	}
	return NULL;
}

/* With the lock held: counts one more stream of token id unless it holds per_token already. */
static bool token_take(struct watch_streams *ws, const char *id)
{
	struct token_count *t = token_of(ws, id);
	if (t == NULL) {
		if ((t = calloc(1, sizeof(*t))) == NULL)
			return false;
		snprintf(t->id, sizeof(t->id), "%s", id);
		hash_add(&ws->tokens, &t->node, hash_str(id));
	}
	if (t->n >= ws->per_token)
		return false;
	t->n++;
	return true;
}

static void token_give(struct watch_streams *ws, const char *id)
{
	struct token_count *t = token_of(ws, id);
	if (t && --t->n == 0) {
		hash_remove(&ws->tokens, &t->node);
		free(t);
	}
}

/* ---- watchers ---- */

static void group_release_locked(struct watch_streams *ws, struct group *g);
static void submit_group(struct watch_streams *ws, struct group *g);

/* The last reference is gone: the stream is done with. Without the lock. */
static void finish_watcher(struct watcher *w)
{
	watch_state_unref(w->known);
	for (size_t i = 0; i < w->n_names; i++)
		free(w->names[i]);
	free(w->names);
	if (w->c) /* the opening never got its row */
		api_stream_done(w->c, w->done_code);
	else
		rpc_stream_release(w->st);
	free(w);
}

/* With the lock held: drops a reference; whether it was the last (then call finish_watcher
 * outside the lock). The last one takes the watcher out of its group. */
static bool unref_locked(struct watcher *w)
{
	if (--w->refs > 0)
		return false;
	struct group *g = w->g;
	if (g) {
		list_remove(&w->node);
		g->n--;
		w->g = NULL;
		group_release_locked(w->ws, g);
	}
	return true;
}

/* With the lock held, which it lets go: drops a reference of w, then submits g's job when go
 * (NULL g: none) and finishes w if that was its last reference. */
static void unref_unlock(struct watcher *w, struct group *g, bool go)
{
	bool last = unref_locked(w);
	pthread_mutex_unlock(&w->ws->mu);
	if (go && g)
		submit_group(w->ws, g);
	if (last)
		finish_watcher(w);
}

static void unref(struct watcher *w)
{
	pthread_mutex_lock(&w->ws->mu);
	unref_unlock(w, NULL, false);
}

/* Sends one message; false when the stream is over or the client does not keep up (then it is
 * ended: the client resumes from the last revision it saw). Without the lock. */
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
	pthread_mutex_lock(&w->ws->mu);
	long long known = w->known ? (long long)w->known->revision : 0;
	pthread_mutex_unlock(&w->ws->mu);
	rpc_stream_fail(w->st, RPC_RESOURCE_EXHAUSTED,
	                "the client does not take its changes: resume from revision %lld", known);
	return false;
}

/* Ends a stream with e's code and message (logged without values). */
static void fail(struct watcher *w, const struct cof_err *e)
{
	int code = e->code == COF_EPRECOND ? RPC_FAILED_PRECONDITION : status_from_code(e->code);
	if (e->detail[0])
		log_warn("WatchSecrets: %s (%s)", e->msg, e->detail);
	rpc_stream_fail(w->st, code, "%s", e->msg[0] ? e->msg : rpc_code_name(code));
}

/* With the lock held: w now knows st (a reference is taken). */
static void set_known(struct watcher *w, struct watch_state *st)
{
	watch_state_unref(w->known);
	w->known = st ? watch_state_ref(st) : NULL;
}

/* ---- groups ---- */

static void group_job(void *arg);
static void own_job(void *arg);

/* With the lock held: the group of what w watches, made if there is none (NULL on OOM). */
static struct group *group_of(struct watch_streams *ws, const Coffer__V1__WatchSecretsRequest *req)
{
	struct group *g;
	list_for_each_entry(g, &ws->groups,
	                    node) if (g->version == (int)req->version &&
	                              strcmp(g->project, req->project) == 0 &&
	                              strcmp(g->environment, req->environment) == 0) return g;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->ws = ws;
	snprintf(g->project, sizeof(g->project), "%s", req->project);
	snprintf(g->environment, sizeof(g->environment), "%s", req->environment);
	g->version = (int)req->version;
	list_init(&g->members);
	list_add(&ws->groups, &g->node);
	return g;
}

/* With the lock held: frees the group if nothing holds it any more. */
static void group_release_locked(struct watch_streams *ws, struct group *g)
{
	if (g->n > 0 || g->busy)
		return;
	list_remove(&g->node);
	watch_state_unref(g->state);
	free(g);
}

/* With the lock held: gives g a job unless one is under way (then it runs again after it).
 * Returns whether the caller must submit one (outside the lock). */
static bool want_group_job(struct group *g)
{
	if (g->busy) {
		g->dirty = true;
		return false;
	}
	g->busy = true;
	g->retry_at_ms = 0;
	return true;
}

static void submit_group(struct watch_streams *ws, struct group *g)
{
	if (workq_submit(ws->api->jobs, WORKQ_BACKGROUND, group_job, g) == 0)
		return;
	/* Too busy: the heartbeat thread tries again. */
	pthread_mutex_lock(&ws->mu);
	g->busy = false;
	g->retry_at_ms = clock_mono_ms() + RETRY_MS;
	group_release_locked(ws, g);
	pthread_mutex_unlock(&ws->mu);
}

/* The state now of what g watches: from the cache when it holds it, else from the database. */
static int read_state(struct watch_streams *ws, struct group *g, struct watch_state **out,
                      struct cof_err *e)
{
	struct domain *d = ws->api->domain;
	struct session ss;
	session_memory(d, &ss);
	int rc = watch_now(&ss, g->project, g->environment, g->version, out, e);
	if (rc != COF_EWOULDBLOCK)
		return rc;
	*e = (struct cof_err){0};
	if ((rc = session_open(d, ws->api->cfg.statement_timeout_ms, &ss, e)) == 0)
		rc = watch_now(&ss, g->project, g->environment, g->version, out, e);
	session_close(&ss);
	return rc;
}

/* Differences worked out once for every member that knew the same state. */
#define MEMO 4
struct memo {
	const struct watch_state *from[MEMO]; /* what the members knew */
	const char **names[MEMO];             /* what changed since (all names) */
	size_t n[MEMO];                       /* how many */
	int used;                             /* entries filled */
};

/* The names that changed between a and b (unfiltered), worked out once per a; NULL on OOM. */
static const char **memo_diff(struct memo *m, const struct watch_state *a,
                              const struct watch_state *b, size_t *n)
{
	for (int i = 0; i < m->used; i++)
		if (m->from[i] == a) {
			*n = m->n[i];
			return m->names[i];
		}
	const char **names = NULL;
	if (watch_diff(a, b, NULL, 0, NULL, 0, &names, n) != 0)
		return NULL;
	if (m->used == MEMO) { /* rare: members knew many states; forget the oldest */
		free(m->names[0]);
		memmove(&m->from[0], &m->from[1], (MEMO - 1) * sizeof(m->from[0]));
		memmove(&m->names[0], &m->names[1], (MEMO - 1) * sizeof(m->names[0]));
		memmove(&m->n[0], &m->n[1], (MEMO - 1) * sizeof(m->n[0]));
		m->used--;
	}
	m->from[m->used] = a;
	m->names[m->used] = names;
	m->n[m->used] = *n;
	m->used++;
	return names;
}

static void memo_free(struct memo *m)
{
	for (int i = 0; i < m->used; i++)
		free(m->names[i]);
}

static bool wanted(const struct watcher *w, const char *name)
{
	if (w->n_names == 0)
		return true;
	for (size_t i = 0; i < w->n_names; i++)
		if (strcmp(w->names[i], name) == 0)
			return true;
	return false;
}

/* What one member hears of state `now` (its group's newest). Without the lock; w->known is
 * written only by its group's job (or its own, before it is the group's). */
static void tell(struct watcher *w, struct watch_state *now, bool new_history, struct memo *memo)
{
	struct watch_streams *ws = w->ws;
	pthread_mutex_lock(&ws->mu);
	struct watch_state *known = w->known ? watch_state_ref(w->known) : NULL;
	pthread_mutex_unlock(&ws->mu);
	bool sent = true, keep = true;
	if (known == NULL) {
		/* Its first message: where it starts. */
		sent = send_change(w, now->revision, NULL, 0, false, true);
	} else if (!new_history && (known == now || known->revision == now->revision)) {
		keep = known != now;
	} else if (known->project_id != now->project_id) {
		/* The project was deleted (and perhaps made again): the stream was bound to it. */
		rpc_stream_fail(w->st, RPC_NOT_FOUND, "project \"%s\" was deleted",
		                w->req->project);
		keep = false;
	} else if (new_history || now->revision < known->revision) {
		/* The database is on another history (a failover): what the client knows may
		 * never have been. */
		sent = send_change(w, now->revision, NULL, 0, true, false);
	} else {
		size_t n_all = 0;
		const char **all = memo_diff(memo, known, now, &n_all);
		const char **mine = all ? calloc(n_all + 1, sizeof(*mine)) : NULL;
		size_t n = 0;
		if (mine == NULL) {
			rpc_stream_fail(w->st, RPC_RESOURCE_EXHAUSTED, "out of memory");
			sent = false;
		} else {
			for (size_t i = 0; i < n_all; i++)
				if (wanted(w, all[i]))
					mine[n++] = all[i];
			sent = n == 0 || send_change(w, now->revision, mine, n, false, false);
		}
		free(mine);
	}
	watch_state_unref(known);
	if (sent && keep) {
		pthread_mutex_lock(&ws->mu);
		set_known(w, now);
		pthread_mutex_unlock(&ws->mu);
	}
}

/* With the lock held: ends every member of g with code and message. */
static void end_members(struct group *g, int code, const char *message)
{
	struct watcher *w;
	list_for_each_entry(w, &g->members, node) rpc_stream_fail(w->st, code, "%s", message);
}

/* One pass of a group's job: read the state now and tell every member that is the group's. */
static void group_pass(struct watch_streams *ws, struct group *g)
{
	struct watch_state *now = NULL;
	struct cof_err e = {0};
	pthread_mutex_lock(&ws->mu);
	bool new_history = g->new_history;
	g->new_history = false;
	pthread_mutex_unlock(&ws->mu);
	int rc = read_state(ws, g, &now, &e);
	pthread_mutex_lock(&ws->mu);
	if (rc == COF_ENOTFOUND) {
		end_members(g, RPC_NOT_FOUND, e.msg);
	} else if (rc) {
		/* The database did not answer: the streams stay, and the group looks again. */
		log_warn("WatchSecrets: cannot read %s/%s: %s (%s)", g->project, g->environment,
		         e.msg, e.detail);
		g->retry_at_ms = clock_mono_ms() + RETRY_MS;
		g->new_history = g->new_history || new_history;
	}
	if (rc) {
		pthread_mutex_unlock(&ws->mu);
		return;
	}
	watch_state_unref(g->state);
	g->state = watch_state_ref(now);
	g->project_id = now->project_id;
	/* The members this pass tells, and those that resume from an older revision, whose first
	 * message (what changed since then) is read by a job of their own. */
	struct watcher **tell_list = calloc(g->n + 1, sizeof(*tell_list));
	struct watcher **own_list = calloc(g->n + 1, sizeof(*own_list));
	size_t n_tell = 0, n_own = 0;
	struct watcher *w;
	list_for_each_entry(w, &g->members, node)
	{
		if (tell_list == NULL || own_list == NULL)
			break;
		if (w->own_job || w->done)
			continue;
		w->refs++;
		if (w->known == NULL && w->from != 0 && w->from != now->revision) {
			w->own_job = true;
			own_list[n_own++] = w;
		} else {
			tell_list[n_tell++] = w;
		}
	}
	if (tell_list == NULL || own_list == NULL) /* out of memory: look again soon */
		g->retry_at_ms = clock_mono_ms() + RETRY_MS;
	pthread_mutex_unlock(&ws->mu);
	for (size_t i = 0; i < n_own; i++) {
		if (workq_submit(ws->api->jobs, WORKQ_BACKGROUND, own_job, own_list[i]) == 0)
			continue; /* the job has the reference now */
		rpc_stream_fail(own_list[i]->st, RPC_UNAVAILABLE,
		                "this replica is too busy; reconnect");
		unref(own_list[i]);
	}
	struct memo memo = {0};
	for (size_t i = 0; i < n_tell; i++) {
		tell(tell_list[i], now, new_history, &memo);
		unref(tell_list[i]);
	}
	memo_free(&memo);
	free(tell_list);
	free(own_list);
	watch_state_unref(now);
}

static void group_job(void *arg)
{
	struct group *g = arg;
	struct watch_streams *ws = g->ws;
	for (;;) {
		group_pass(ws, g);
		pthread_mutex_lock(&ws->mu);
		bool again = g->dirty && g->n > 0;
		g->dirty = false;
		g->busy = again;
		if (!again)
			group_release_locked(ws, g);
		pthread_mutex_unlock(&ws->mu);
		if (!again)
			return;
	}
}

/* A resuming stream's first message: what changed since its from_revision, from one snapshot. */
static void own_job(void *arg)
{
	struct watcher *w = arg;
	struct watch_streams *ws = w->ws;
	const Coffer__V1__WatchSecretsRequest *req = w->req;
	struct watch_state *then = NULL, *now = NULL;
	char **touched = NULL;
	size_t n_touched = 0;
	struct session ss;
	struct cof_err e = {0};
	bool sent = false;
	int rc = session_open(ws->api->domain, ws->api->cfg.statement_timeout_ms, &ss, &e);
	if (rc == 0)
		rc = watch_since(&ss, req->project, req->environment, req->version, w->from, &then,
		                 &now, &touched, &n_touched, &e);
	if (rc == COF_EPRECOND) { /* cannot be told: everything again */
		e = (struct cof_err){0};
		rc = watch_now(&ss, req->project, req->environment, req->version, &now, &e);
		sent = rc == 0 && send_change(w, now->revision, NULL, 0, true, false);
	} else if (rc == 0) {
		const char **changed = NULL;
		size_t n = 0;
		if (watch_diff(then, now, touched, n_touched, (const char *const *)w->names,
		               w->n_names, &changed, &n) != 0)
			rc = cof_err_set(&e, COF_EINTERNAL, "out of memory");
		else
			sent = send_change(w, now->revision, changed, n, false, n == 0);
		free(changed);
	}
	session_close(&ss);
	if (rc)
		fail(w, &e);
	pthread_mutex_lock(&ws->mu);
	struct group *g = w->g;
	bool go = false;
	if (sent) {
		set_known(w, now);
		/* From here on its group tells it; a change it has not heard of yet is caught up.
		 */
		go = g && g->state && g->state->revision != now->revision && want_group_job(g);
	}
	w->own_job = false;
	unref_unlock(w, g, go);
	watch_state_unref(then);
	watch_state_unref(now);
	watch_names_free(touched, n_touched);
}

/* The stream is over (the client left, or it was ended). */
static void on_done(struct rpc_stream *st, int code, void *arg)
{
	(void)st;
	struct watcher *w = arg;
	struct watch_streams *ws = w->ws;
	pthread_mutex_lock(&ws->mu);
	w->done = true;
	w->done_code = code;
	if (w->g)
		ws->n--;
	token_give(ws, w->token_id);
	unref_unlock(w, NULL, false);
}

static const struct rpc_stream_handlers watch_handlers = {NULL, on_done};

/* The opening's audit row is stored (status 0), or cannot be: no row, no stream. */
static void opened(void *arg, int status)
{
	struct watcher *w = arg;
	struct watch_streams *ws = w->ws;
	if (status != 0) {
		metrics_audit_failure(ws->api->metrics);
		rpc_stream_fail(w->st, RPC_UNAVAILABLE, "the audit log is unavailable");
		unref(w);
		return;
	}
	/* The call has done its part (the access decision, the row): only the stream stays. */
	w->st = api_stream_detach(w->c);
	w->c = NULL;
	pthread_mutex_lock(&ws->mu);
	struct group *g = NULL;
	bool go = false;
	if (!w->done && (g = group_of(ws, w->req)) == NULL) {
		rpc_stream_fail(w->st, RPC_RESOURCE_EXHAUSTED, "out of memory");
	} else if (g) {
		w->g = g;
		list_add(&g->members, &w->node);
		g->n++;
		ws->n++;
		go = want_group_job(g);
	}
	unref_unlock(w, g, go);
}

int watch_open(struct watch_streams *ws, struct call *c, const Coffer__V1__WatchSecretsRequest *req,
               struct rpc_stream *st)
{
	/* A stream counts against its token from the moment it is asked for. */
	pthread_mutex_lock(&ws->mu);
	bool ok = token_take(ws, c->audit.token_id);
	pthread_mutex_unlock(&ws->mu);
	if (!ok)
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
	w->req = req;
	w->from = req->from_revision;
	w->last_sent_ms = clock_mono_ms();
	w->expire_us = c->caller.expire_us;
	snprintf(w->token_id, sizeof(w->token_id), "%s", c->audit.token_id);
	w->refs = 2; /* the stream, and the opening */
	w->done_code = RPC_OK;
	c->audited = true; /* the opening is the stream's one row */
	c->audit.code = RPC_OK;
	rpc_stream_start(st, &watch_handlers, w, false);
	if (audit_submit(c->api->audit, AUDIT_STREAMS, &c->audit, opened, w) != 0)
		opened(w, COF_EUNAVAIL);
	return RPC_PENDING;
oom:
	if (w)
		for (size_t i = 0; i < w->n_names; i++)
			free(w->names[i]);
	free(w ? w->names : NULL);
	free(w);
	pthread_mutex_lock(&ws->mu);
	token_give(ws, c->audit.token_id);
	pthread_mutex_unlock(&ws->mu);
	return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
}

void watch_streams_changed(struct watch_streams *ws, int64_t project_id, int64_t revision)
{
	pthread_mutex_lock(&ws->mu);
	size_t n_groups = 0;
	struct group *g;
	list_for_each_entry(g, &ws->groups, node) n_groups++;
	struct group **todo = calloc(n_groups + 1, sizeof(*todo));
	size_t n = 0;
	list_for_each_entry(g, &ws->groups, node)
	{
		if (project_id != 0 && g->project_id != 0 && g->project_id != project_id)
			continue;
		if (project_id == 0 && revision == LISTENER_NEW_HISTORY)
			g->new_history = true;
		if (g->n == 0)
			continue;
		if (todo == NULL) /* out of memory: the heartbeat thread catches up */
			g->retry_at_ms = clock_mono_ms();
		else if (want_group_job(g))
			todo[n++] = g;
	}
	pthread_mutex_unlock(&ws->mu);
	for (size_t i = 0; i < n; i++)
		submit_group(ws, todo[i]);
	free(todo);
}

void watch_streams_token_revoked(struct watch_streams *ws, const char *token_id)
{
	pthread_mutex_lock(&ws->mu);
	struct group *g;
	struct watcher *w;
	list_for_each_entry(g, &ws->groups, node) list_for_each_entry(
	        w, &g->members, node) if (!w->done && strcmp(w->token_id, token_id) == 0)
	        rpc_stream_fail(w->st, RPC_UNAUTHENTICATED, "token %s was revoked", token_id);
	pthread_mutex_unlock(&ws->mu);
}

/* A heartbeat to send: to whom, and the revision it says. */
struct beat {
	struct watcher *w;
	int64_t revision;
};

/* With the lock held: heartbeats due at t (a reference each), tokens expired at wall-clock
 * now_us (ended), groups due to look again (their jobs to submit). */
static void due_work(struct watch_streams *ws, int64_t t, int64_t now_us, struct beat *beats,
                     size_t *n_beats, size_t cap, struct group **groups, size_t *n_groups,
                     size_t cap_groups)
{
	struct group *g;
	struct watcher *w;
	list_for_each_entry(g, &ws->groups, node)
	{
		if (g->retry_at_ms && t >= g->retry_at_ms && g->n > 0 && *n_groups < cap_groups &&
		    want_group_job(g))
			groups[(*n_groups)++] = g;
		list_for_each_entry(w, &g->members, node)
		{
			if (w->done)
				continue;
			if (w->expire_us && now_us >= w->expire_us) {
				rpc_stream_fail(w->st, RPC_UNAUTHENTICATED, "token %s has expired",
				                w->token_id);
				continue;
			}
			if (w->known == NULL || w->own_job ||
			    t - w->last_sent_ms < ws->heartbeat_ms || *n_beats >= cap)
				continue;
			w->refs++;
			w->last_sent_ms = t;
			beats[(*n_beats)++] = (struct beat){w, w->known->revision};
		}
	}
}

/* Heartbeats to quiet streams, the end of streams whose token expired, and another look for
 * groups whose read failed. */
static void *heartbeats(void *arg)
{
	struct watch_streams *ws = arg;
	pthread_mutex_lock(&ws->mu);
	while (!ws->stop) {
		struct timespec until = clock_realtime_after_ms(1000);
		pthread_cond_timedwait(&ws->cv, &ws->mu, &until);
		if (ws->stop)
			break;
		struct timeval tv;
		gettimeofday(&tv, NULL);
		int64_t now_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
		size_t cap = ws->n + 1, cap_groups = 0;
		struct list_node *n;
		list_for_each(n, &ws->groups) cap_groups++;
		struct beat *beats = calloc(cap, sizeof(*beats));
		struct group **groups = calloc(cap_groups + 1, sizeof(*groups));
		size_t n_beats = 0, n_groups = 0;
		if (beats && groups)
			due_work(ws, clock_mono_ms(), now_us, beats, &n_beats, cap, groups,
			         &n_groups, cap_groups);
		pthread_mutex_unlock(&ws->mu);
		for (size_t i = 0; i < n_beats; i++) {
			send_change(beats[i].w, beats[i].revision, NULL, 0, false, true);
			unref(beats[i].w);
		}
		for (size_t i = 0; i < n_groups; i++)
			submit_group(ws, groups[i]);
		free(beats);
		free(groups);
		pthread_mutex_lock(&ws->mu);
	}
	pthread_mutex_unlock(&ws->mu);
	return NULL;
}

int watch_streams_new(struct api *api, int heartbeat_ms, int per_token, struct watch_streams **out)
{
	*out = NULL;
	struct watch_streams *ws = calloc(1, sizeof(*ws));
	if (ws == NULL)
		return -1;
	ws->api = api;
	ws->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 15000;
	ws->per_token = per_token > 0 ? per_token : 256;
	list_init(&ws->groups);
	if (hash_init(&ws->tokens, TOKEN_CHAINS) != 0) {
		free(ws);
		return -1;
	}
	pthread_mutex_init(&ws->mu, NULL);
	pthread_cond_init(&ws->cv, NULL);
	if (pthread_create(&ws->thread, NULL, heartbeats, ws) != 0) {
		pthread_cond_destroy(&ws->cv);
		pthread_mutex_destroy(&ws->mu);
		hash_destroy(&ws->tokens);
		free(ws);
		return -1;
	}
	*out = ws;
	return 0;
}

void watch_streams_end_all(struct watch_streams *ws)
{
	pthread_mutex_lock(&ws->mu);
	struct group *g;
	struct watcher *w;
	list_for_each_entry(g, &ws->groups, node) list_for_each_entry(w, &g->members, node)
	        rpc_stream_fail(w->st, RPC_UNAVAILABLE,
	                        "this replica is shutting down: resume from revision %lld "
	                        "on another",
	                        (long long)(w->known ? w->known->revision : w->from));
	pthread_mutex_unlock(&ws->mu);
}

size_t watch_streams_count(struct watch_streams *ws)
{
	pthread_mutex_lock(&ws->mu);
	size_t n = ws->n;
	pthread_mutex_unlock(&ws->mu);
	return n;
}

static bool drop_count(struct hash_node *n, void *arg)
{
	(void)arg;
	free(hash_entry(n, struct token_count, node));
	return true;
}

void watch_streams_free(struct watch_streams *ws)
{
	if (ws == NULL)
		return;
	pthread_mutex_lock(&ws->mu);
	ws->stop = true;
	pthread_cond_broadcast(&ws->cv);
	pthread_mutex_unlock(&ws->mu);
	pthread_join(ws->thread, NULL);
	hash_sweep(&ws->tokens, 0, drop_count, NULL, NULL);
	hash_destroy(&ws->tokens);
	pthread_cond_destroy(&ws->cv);
	pthread_mutex_destroy(&ws->mu);
	free(ws);
}
