/* session.c - the connection pool, sessions and the schema checks (see session.h). */
#include "session.h"

#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

struct domain {
	struct store_pool *pool;  /* connections lent to calls */
	struct crypt_keyring *kr; /* the keyring */
};

/* How long the audit writer waits for a connection and for its batch. */
#define AUDIT_SINK_TIMEOUT_MS 5000

int domain_new(const char *url, int connections, struct crypt_keyring *kr, struct domain **out,
               struct cof_err *e)
{
	*out = NULL;
	struct domain *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	int rc = store_pool_new(url, connections, &d->pool, e);
	if (rc) {
		free(d);
		return rc;
	}
	d->kr = kr;
	*out = d;
	return 0;
}

void domain_free(struct domain *d)
{
	if (d == NULL)
		return;
	store_pool_free(d->pool);
	free(d);
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

int domain_audit_sink(void *domain, const struct audit_row *rows, size_t n, struct cof_err *e)
{
	struct domain *d = domain;
	struct store *s = NULL;
	int rc = store_pool_acquire(d->pool, AUDIT_SINK_TIMEOUT_MS, &s, e);
	if (rc == 0)
		rc = store_audit_insert(s, rows, n, e);
	store_pool_release(d->pool, s);
	return rc;
}
