/* session.c - sessions over the domain's pool or a connection of their own, and the schema checks
 * (see session.h). */
#include "session_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "domain_internal.h"
#include "log.h"
#include "store.h"

void session_memory(struct domain *d, struct session *out)
{
	*out = (struct session){.kr = d->kr, .owner = d};
}

struct cache *session_cache(struct session *ss)
{
	return ss->owner ? ss->owner->cache : NULL;
}

int session_tx(struct session *ss, enum store_tx_mode mode, store_tx_fn fn, void *arg,
               struct audit_row *audit, struct cof_err *e)
{
	int rc = store_tx(ss->store, mode, fn, arg, audit, e);
	struct domain *d = ss->owner;
	/* (A commit whose outcome is unknown is heard of through the notifications, if it
	 * happened.) */
	if (mode != STORE_TX_WRITE || d == NULL || d->cache == NULL || rc != 0)
		return rc;
	struct store_changes ch;
	store_last_changes(ss->store, &ch);
	if (ch.project_id)
		domain__project_changed(d, ch.project_id, ch.revision);
	if (ch.token_id[0])
		domain__token_changed(d, ch.token_id);
	return rc;
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
