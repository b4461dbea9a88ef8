/*
 * store_migrate.c - applies server/migrations in order, each in its own transaction, recorded in
 * coffer_schema_migrations. A transaction-scoped advisory lock lets several replicas migrate at
 * once safely: the others wait, then find the migration applied.
 */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "store_internal.h"
#include "store_migrate.h"

#define MIGRATION_LOCK_KEY "7305231469140733953"

static int apply_one(struct store *s, const struct migration *m, int *applied, struct cof_err *e)
{
	int rc = store__begin(s, STORE_TX_WRITE, e);
	if (rc)
		return rc;
	PGresult *r = store__exec(s, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", 0,
	                          NULL, NULL, NULL, "migration lock", e);
	if (r == NULL)
		goto out_rollback;
	PQclear(r);
	r = store__exec(s,
	                "CREATE TABLE IF NOT EXISTS coffer_schema_migrations ("
	                " version integer PRIMARY KEY, name text NOT NULL,"
	                " applied_at timestamptz NOT NULL DEFAULT now())",
	                0, NULL, NULL, NULL, "migration table", e);
	if (r == NULL)
		goto out_rollback;
	PQclear(r);
	char v[16];
	snprintf(v, sizeof(v), "%d", m->version);
	const char *vals[2] = {v, m->name};
	r = store__exec(s, "SELECT 1 FROM coffer_schema_migrations WHERE version = $1", 1, vals,
	                NULL, NULL, "migration check", e);
	if (r == NULL)
		goto out_rollback;
	int done = PQntuples(r) > 0;
	PQclear(r);
	if (done) {
		store__rollback(s);
		return 0;
	}
	/* Without parameters: the simple protocol, so a migration may hold several statements. */
	PGresult *x = store__exec(s, m->sql, 0, NULL, NULL, NULL, "migration", e);
	if (x == NULL) {
		if (e->code != COF_EUNAVAIL && e->code != COF_EDEADLINE)
			cof_err_set(e, COF_EINTERNAL, "migration %04d_%s failed", m->version,
			            m->name);
		goto out_rollback;
	}
	PQclear(x);
	r = store__exec(s, "INSERT INTO coffer_schema_migrations (version, name) VALUES ($1, $2)",
	                2, vals, NULL, NULL, "migration record", e);
	if (r == NULL)
		goto out_rollback;
	PQclear(r);
	rc = store__commit(s, e);
	if (rc == 0) {
		(*applied)++;
		log_info("applied migration %04d_%s", m->version, m->name);
	}
	return rc;
out_rollback:
	store__rollback(s);
	return e->code ? e->code : COF_EINTERNAL;
}

int store_migrate(struct store *s, int *applied, struct cof_err *e)
{
	*applied = 0;
	for (size_t i = 0; i < n_migrations; i++) {
		int rc = apply_one(s, &migrations[i], applied, e);
		if (rc)
			return rc;
	}
	return 0;
}

int store_schema_version(struct store *s, int *applied, int *known, struct cof_err *e)
{
	*applied = 0;
	*known = n_migrations ? migrations[n_migrations - 1].version : 0;
	PGresult *r = store__exec(s, "SELECT to_regclass('coffer_schema_migrations') IS NOT NULL",
	                          0, NULL, NULL, NULL, "schema version", e);
	if (r == NULL)
		return e->code;
	bool exists = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!exists)
		return 0;
	r = store__exec(s, "SELECT coalesce(max(version), 0) FROM coffer_schema_migrations", 0,
	                NULL, NULL, NULL, "schema version", e);
	if (r == NULL)
		return e->code;
	*applied = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}
