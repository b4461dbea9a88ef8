/*
 * domain_internal.h - struct domain, for the files of the domain unit (domain.c) and the sessions
 * it lends (session.c).
 */
#ifndef COFFER_DOMAIN_INTERNAL_H
#define COFFER_DOMAIN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "listener.h"

struct domain {
	char *url;                   /* the database */
	char replica[96];            /* this process, for its write probes (host:pid) */
	atomic_bool aborting;        /* domain_abort: every connection gives up */
	int64_t last_probe_ms;       /* the last write probe (the audit writer's thread) */
	struct store_pool *pool;     /* connections lent to calls, one per database thread */
	struct store *audit;         /* the audit writer's own connection (its thread only) */
	struct crypt_keyring *kr;    /* the keyring */
	struct cache *cache;         /* rows and tokens between calls, or NULL */
	struct listener *listener;   /* the listener that keeps the cache coherent */
	pthread_mutex_t hook_mu;     /* held while a hook runs, so that unsetting them waits */
	struct listener_hooks hooks; /* domain_on_change */
};

/* This replica's own commit changed a project / a token: the cache forgets it and the hooks hear of
 * it, before the answer leaves (every replica also hears of it through the listener). */
void domain__project_changed(struct domain *d, int64_t project_id, int64_t revision);
void domain__token_changed(struct domain *d, const char *token_id);

#endif
