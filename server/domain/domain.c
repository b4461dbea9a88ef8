/*
 * domain.c - the process-wide domain (see domain.h): the connection pool, the keyring, the cache
 * and the listener that keeps it coherent, the hooks that hear of changes, and the audit writer's
 * own connection.
 */
#include "domain.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "domain_internal.h"
#include "listener.h"
#include "log.h"
#include "store.h"

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

void domain__project_changed(struct domain *d, int64_t project_id, int64_t revision)
{
	cache_project_changed(d->cache, project_id, revision);
	fire(d, project_id, revision);
}

void domain__token_changed(struct domain *d, const char *token_id)
{
	cache_token_changed(d->cache, token_id);
	fire_token(d, token_id);
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
	if (rc == 0 && (rc = listener_start(notify_url && *notify_url ? notify_url : url, d->cache,
	                                    &d->listener, e)) == 0)
		listener_set_hooks(
		        d->listener,
		        &(struct listener_hooks){.project = fire, .token = fire_token, .arg = d});
	if (rc) {
		domain_free(d);
		return rc;
	}
	/* A replica that has just started serves from memory as soon as it listens. */
	for (int i = 0; i < 200 && !listener_listening(d->listener); i++)
		nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
	*out = d;
	return 0;
}

void domain_free(struct domain *d)
{
	if (d == NULL)
		return;
	listener_stop(d->listener);
	cache_free(d->cache);
	store_pool_free(d->pool);
	store_close(d->audit);
	free(d->url);
	pthread_mutex_destroy(&d->hook_mu);
	free(d);
}

bool domain_db_ready(struct domain *d)
{
	return listener_db_ready(d->listener) && !store_writes_stalled();
}

void domain_abort(struct domain *d)
{
	atomic_store(&d->aborting, true);
}

bool domain_url_valid(const char *url, char *why, size_t cap)
{
	return store_url_valid(url, why, cap);
}

void domain_on_change(struct domain *d, const struct listener_hooks *h)
{
	pthread_mutex_lock(&d->hook_mu);
	d->hooks = h ? *h : (struct listener_hooks){0};
	pthread_mutex_unlock(&d->hook_mu);
}

void domain_cache_stats(struct domain *d, struct cache_stats *out)
{
	if (d->cache)
		cache_stats(d->cache, out);
	else
		memset(out, 0, sizeof(*out));
}

void domain_connection_states(struct domain *d, int *up, int *down)
{
	store_pool_states(d->pool, up, down);
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
