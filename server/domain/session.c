/* session.c - the connection pool, sessions and the schema checks (see session.h). */
#include "session.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

#include "cache.h"
#include "changes.h"
#include "clock.h"
#include "log.h"
#include "store.h"

struct domain {
	char *url;                  /* the database */
	char replica[96];           /* this process, for its write probes (host:pid) */
	atomic_bool aborting;       /* domain_abort: every connection gives up */
	int64_t last_probe_ms;      /* the last write probe (the audit writer's thread) */
	struct store_pool *pool;    /* connections lent to calls, one per database thread */
	struct store *audit;        /* the audit writer's own connection (its thread only) */
	struct crypt_keyring *kr;   /* the keyring */
	struct cache *cache;        /* rows and tokens between calls, or NULL */
	struct changes *changes;    /* the listener that keeps the cache coherent */
	pthread_mutex_t hook_mu;    /* held while a hook runs, so that unsetting them waits */
	struct changes_hooks hooks; /* domain_on_change */
};

/* Hands a project change to the hook, if one is set. */
static void fire(void *arg, int64_t project_id, int64_t revision)
{
	struct domain *d = arg;
	pthread_mutex_lock(&d->hook_mu);
	if (d->hooks.project)
		d->hooks.project(d->hooks.arg, project_id, revision);
	pthread_mutex_unlock(&d->hook_mu);
}

/* Hands a token's revocation to the hook, if one is set. */
static void fire_token(void *arg, const char *token_id)
{
	struct domain *d = arg;
	pthread_mutex_lock(&d->hook_mu);
	if (d->hooks.token)
		d->hooks.token(d->hooks.arg, token_id);
	pthread_mutex_unlock(&d->hook_mu);
}

/* How long the audit writer's batch may take, connecting included. */
#define AUDIT_SINK_TIMEOUT_MS 5000
/* While commits are not confirmed, how often a write probe tries. */
#define PROBE_EVERY_MS 2000

int domain_new(const char *url, const char *notify_url, int connections, size_t cache_bytes,
               struct crypt_keyring *kr, struct domain **out, struct cof_err *e)
{
	*out = NULL;
	struct domain *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	d->kr = kr;
	char host[64] = "";
	gethostname(host, sizeof(host) - 1);
	snprintf(d->replica, sizeof(d->replica), "%s:%ld", host, (long)getpid());
	pthread_mutex_init(&d->hook_mu, NULL);
	int rc = (d->url = strdup(url ? url : "")) ? 0
	                                           : cof_err_set(e, COF_EINTERNAL, "out of memory");
	if (rc == 0)
		rc = store_pool_new(url, connections, &d->aborting, &d->pool, e);
	if (rc == 0 && cache_new(cache_bytes, &d->cache) != 0)
		rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
	if (rc == 0 && (rc = changes_start(notify_url && *notify_url ? notify_url : url, d->cache,
	                                   &d->changes, e)) == 0)
		changes_set_hooks(
		        d->changes,
		        &(struct changes_hooks){.project = fire, .token = fire_token, .arg = d});
	if (rc) {
		domain_free(d);
		return rc;
	}
	/* A replica that has just started serves from memory as soon as it listens. */
	for (int i = 0; i < 200 && !changes_listening(d->changes); i++)
		nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
	*out = d;
	return 0;
}

void domain_free(struct domain *d)
{
	if (d == NULL)
		return;
	changes_stop(d->changes);
	cache_free(d->cache);
	store_pool_free(d->pool);
	store_close(d->audit);
	free(d->url);
	pthread_mutex_destroy(&d->hook_mu);
	free(d);
}

bool domain_db_ready(struct domain *d)
{
	return changes_db_ready(d->changes) && !store_writes_stalled();
}

void domain_abort(struct domain *d)
{
	atomic_store(&d->aborting, true);
}

bool domain_url_valid(const char *url, char *why, size_t cap)
{
	return store_url_valid(url, why, cap);
}

void domain_on_change(struct domain *d, const struct changes_hooks *h)
{
	pthread_mutex_lock(&d->hook_mu);
	d->hooks = h ? *h : (struct changes_hooks){0};
	pthread_mutex_unlock(&d->hook_mu);
}

void domain_cache_stats(struct domain *d, struct cache_stats *out)
{
	if (d->cache)
		cache_stats(d->cache, out);
	else
		memset(out, 0, sizeof(*out));
}

void session_memory(struct domain *d, struct session *out)
{
	*out = (struct session){.kr = d->kr, .owner = d};
}

struct cache *session_cache(struct session *ss)
{
	return ss->owner ? ss->owner->cache : NULL;
}

int session_tx(struct session *ss, int mode,
               int (*fn)(struct store *s, void *arg, struct cof_err *e), void *arg,
               struct audit_row *audit, struct cof_err *e)
{
	int rc = store_tx(ss->store, (enum store_tx_mode)mode, fn, arg, audit, e);
	struct domain *d = ss->owner;
	/* (A commit whose outcome is unknown is heard of through the notifications, if it
	 * happened.) */
	if (mode != STORE_TX_WRITE || d == NULL || d->cache == NULL || rc != 0)
		return rc;
	struct store_changes ch;
	store_last_changes(ss->store, &ch);
	if (ch.project_id) {
		cache_project_changed(d->cache, ch.project_id, ch.revision);
		fire(d, ch.project_id, ch.revision);
	}
	if (ch.token_id[0]) {
		cache_token_changed(d->cache, ch.token_id);
		fire_token(d, ch.token_id);
	}
	return rc;
}

void domain_connection_states(struct domain *d, int *up, int *down)
{
	store_pool_states(d->pool, up, down);
}

int session_open(struct domain *d, int64_t timeout_ms, struct session *out, struct cof_err *e)
{
	*out = (struct session){.kr = d->kr, .owner = d};
	return store_pool_acquire(d->pool, timeout_ms, &out->store, e);
}

int session_connect(const char *url, struct crypt_keyring *kr, int wait_s, struct session *out,
                    struct cof_err *e)
{
	*out = (struct session){.kr = kr};
	for (int i = 0;; i++) {
		int rc = store_open(url, &out->store, e);
		if (rc == 0 || rc != COF_EUNAVAIL || i >= wait_s) {
			if (rc) {
				store_close(out->store);
				out->store = NULL;
			}
			return rc;
		}
		if (i == 0)
			log_warn("database not reachable yet (%s); retrying for up to %d s",
			         e->detail, wait_s);
		store_close(out->store);
		out->store = NULL;
		sleep(1);
	}
}

void session_close(struct session *ss)
{
	if (ss == NULL || ss->store == NULL)
		return;
	if (ss->owner)
		store_pool_release(ss->owner->pool, ss->store);
	else
		store_close(ss->store);
	ss->store = NULL;
}

bool session_ping(struct session *ss)
{
	return store_ping(ss->store);
}

int session_migrate(struct session *ss, int *applied, struct cof_err *e)
{
	return store_migrate(ss->store, applied, e);
}

int session_check_schema(struct session *ss, struct cof_err *e)
{
	int applied = 0, known = 0;
	int rc = store_schema_version(ss->store, &applied, &known, e);
	if (rc == 0 && applied < known)
		rc = cof_err_set(
		        e, COF_EPRECOND,
		        "the database schema is at version %d and this cofferd needs %d: run "
		        "'cofferd migrate' or start with --migrate",
		        applied, known);
	return rc;
}

/* The audit writer's own connection, made on first use (not connected yet when the database
 * does not answer: the next use tries again); NULL on OOM. */
static struct store *audit_conn(struct domain *d, struct cof_err *e)
{
	if (d->audit == NULL && store_open(d->url, &d->audit, e) != 0 && d->audit == NULL)
		return NULL;
	store_set_abort(d->audit, &d->aborting);
	return d->audit;
}

void domain_audit_idle(void *domain)
{
	struct domain *d = domain;
	int64_t now = clock_mono_ms();
	if (!store_writes_stalled() || now - d->last_probe_ms < PROBE_EVERY_MS)
		return;
	d->last_probe_ms = now;
	struct cof_err e = {0};
	struct store *s = audit_conn(d, &e);
	if (s && store_write_probe(s, d->replica, AUDIT_SINK_TIMEOUT_MS))
		log_info("the database confirms commits again");
}

int domain_audit_sink(void *domain, const struct audit_row *rows, size_t n, struct cof_err *e)
{
	struct domain *d = domain;
	/* A connection of its own, which no call can take: the rows of a burst of calls never wait
	 * for the calls' connections. */
	struct store *s = audit_conn(d, e);
	if (s == NULL)
		return e->code ? e->code : COF_EINTERNAL;
	int rc = store_call_begin(s, AUDIT_SINK_TIMEOUT_MS, e);
	if (rc == 0)
		rc = store_audit_insert(s, rows, n, e);
	return rc;
}
