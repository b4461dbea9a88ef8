/*
 * store_envs.c - environments, overrides, and the rows that resolve and merge read.
 */
#include <string.h>

#include "store_internal.h"

#define ENV_COLS                                                                                   \
	"e.id, e.project_id, e.name, e.description, e.revision, "                                  \
	"(extract(epoch FROM e.create_time) * 1000000)::int8"

static void env_row(PGresult *r, int i, struct store_environment *out)
{
	out->id = col_i64(r, i, 0);
	out->project_id = col_i64(r, i, 1);
	col_str(r, i, 2, out->name, sizeof(out->name));
	col_str(r, i, 3, out->description, sizeof(out->description));
	out->revision = col_i64(r, i, 4);
	out->create_us = col_i64(r, i, 5);
}

void store_sealed_free(struct store_sealed *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		free(rows[i].sealed);
	free(rows);
}

int store_environment_get(struct store *s, const char *project, const char *name,
                          struct store_environment *out, struct cof_err *e)
{
	const char *vals[2] = {project, name};
	PGresult *r =
	        store__exec(s,
	                    "SELECT " ENV_COLS " FROM projects p LEFT JOIN environments e "
	                    "ON e.project_id = p.id AND e.name = $2 AND e.deleted_rev IS NULL "
	                    "WHERE p.name = $1",
	                    2, vals, NULL, NULL, "environment get", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	if (PQntuples(r) == 0)
		rc = cof_err_set(e, COF_ENOTFOUND, "project \"%s\" not found", project);
	else if (PQgetisnull(r, 0, 0))
		rc = cof_err_set(e, COF_ENOTFOUND, "environment \"%s\" not found in project \"%s\"",
		                 name, project);
	else
		env_row(r, 0, out);
	PQclear(r);
	return rc;
}

int store_environment_list(struct store *s, const char *project, const char *after, int limit,
                           struct store_environment *out, int *n, struct cof_err *e)
{
	char lim[24];
	const char *vals[3] = {project, after, I64(lim, limit)};
	PGresult *r =
	        store__exec(s,
	                    "SELECT " ENV_COLS " FROM projects p LEFT JOIN LATERAL ("
	                    "  SELECT * FROM environments x WHERE x.project_id = p.id AND "
	                    "  x.deleted_rev IS NULL AND x.name COLLATE \"C\" > $2 "
	                    "  ORDER BY x.name COLLATE \"C\" LIMIT $3) e ON true WHERE p.name = $1 "
	                    "ORDER BY e.name COLLATE \"C\"",
	                    3, vals, NULL, NULL, "environment list", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	*n = 0;
	if (PQntuples(r) == 0)
		rc = cof_err_set(e, COF_ENOTFOUND, "project \"%s\" not found", project);
	for (int i = 0; rc == 0 && i < PQntuples(r); i++)
		if (!PQgetisnull(r, i, 0))
			env_row(r, i, &out[(*n)++]);
	PQclear(r);
	return rc;
}

int store_environment_find(struct store *s, int64_t project_id, const char *name,
                           struct store_environment *out, struct cof_err *e)
{
	char a[24];
	const char *vals[2] = {I64(a, project_id), name};
	PGresult *r = store__exec(s,
	                          "SELECT " ENV_COLS " FROM environments e WHERE e.project_id = $1 "
	                          "AND e.name = $2 AND e.deleted_rev IS NULL",
	                          2, vals, NULL, NULL, "environment find", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	if (PQntuples(r) == 0)
		rc = cof_err_set(e, COF_ENOTFOUND, "environment \"%s\" not found", name);
	else
		env_row(r, 0, out);
	PQclear(r);
	return rc;
}

int store_environment_at(struct store *s, int64_t project_id, const char *name, int64_t at,
                         int64_t *id, struct cof_err *e)
{
	char a[24], b[24];
	const char *vals[3] = {I64(a, project_id), name, I64(b, at)};
	PGresult *r =
	        store__exec(s,
	                    "SELECT id FROM environments WHERE project_id = $1 AND name = $2 "
	                    "AND created_rev <= $3 AND (deleted_rev IS NULL OR deleted_rev > $3)",
	                    3, vals, NULL, NULL, "environment at", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	if (PQntuples(r) == 0)
		rc = cof_err_set(e, COF_ENOTFOUND, "environment \"%s\" not found", name);
	else
		*id = col_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

int store_environment_insert(struct store *s, int64_t project_id, const char *name,
                             const char *description, int64_t revision,
                             struct store_environment *out, struct cof_err *e)
{
	char a[24], b[24];
	const char *vals[4] = {I64(a, project_id), name, description, I64(b, revision)};
	PGresult *r = store__exec(
	        s,
	        "INSERT INTO environments AS e (project_id, name, description, "
	        "revision, created_rev) VALUES ($1, $2, $3, $4, $4) RETURNING " ENV_COLS,
	        4, vals, NULL, NULL, "environment insert", e);
	if (r == NULL)
		return e->code;
	env_row(r, 0, out);
	PQclear(r);
	return 0;
}

int store_environment_delete(struct store *s, int64_t environment_id, int64_t revision,
                             struct cof_err *e)
{
	char a[24], b[24];
	const char *vals[2] = {I64(a, environment_id), I64(b, revision)};
	int rc = store__run(s,
	                    "UPDATE environments SET deleted_rev = $2, revision = $2 WHERE id = $1",
	                    2, vals, NULL, NULL, "environment delete", e);
	if (rc)
		return rc;
	return store__run(s,
	                  "UPDATE secret_values SET valid_to = $2 WHERE environment_id = $1 "
	                  "AND valid_to IS NULL",
	                  2, vals, NULL, NULL, "environment overrides end", e);
}

int store_environment_set_revision(struct store *s, int64_t environment_id, int64_t revision,
                                   struct cof_err *e)
{
	char a[24], b[24];
	const char *vals[2] = {I64(a, environment_id), I64(b, revision)};
	return store__run(s, "UPDATE environments SET revision = $2 WHERE id = $1", 2, vals, NULL,
	                  NULL, "environment revision", e);
}

int store_override_list(struct store *s, const char *project, const char *environment, int version,
                        const char *after_secret, int after_version, int limit,
                        struct store_override *out, int *n, struct cof_err *e)
{
	struct store_environment env;
	int rc = store_environment_get(s, project, environment, &env, e);
	if (rc)
		return rc;
	char a[24], b[24], c[24], d[24];
	const char *vals[5] = {I64(a, env.id), I64(b, version), after_secret, I64(c, after_version),
	                       I64(d, limit)};
	PGresult *r = store__exec(
	        s,
	        "SELECT s.name, v.version, v.valid_from, "
	        "(extract(epoch FROM v.update_time) * 1000000)::int8 "
	        "FROM secret_values v JOIN secrets s ON s.id = v.secret_id "
	        "WHERE v.environment_id = $1 AND v.valid_to IS NULL AND ($2 = 0 OR v.version = $2) "
	        "AND (s.name COLLATE \"C\", v.version) > ($3, $4) "
	        "ORDER BY s.name COLLATE \"C\", v.version LIMIT $5",
	        5, vals, NULL, NULL, "override list", e);
	if (r == NULL)
		return e->code;
	*n = PQntuples(r);
	for (int i = 0; i < *n; i++) {
		col_str(r, i, 0, out[i].secret, sizeof(out[i].secret));
		out[i].version = (int)col_i64(r, i, 1);
		out[i].revision = col_i64(r, i, 2);
		out[i].update_us = col_i64(r, i, 3);
	}
	PQclear(r);
	return 0;
}

/* Columns: secret id, name, visibility, environment id, version, valid_from, sealed. */
static int sealed_rows(PGresult *r, struct store_sealed **rows, size_t *n, struct cof_err *e)
{
	size_t count = (size_t)PQntuples(r);
	*rows = calloc(count ? count : 1, sizeof(**rows));
	*n = 0;
	if (*rows == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	for (size_t i = 0; i < count; i++) {
		struct store_sealed *x = &(*rows)[i];
		int row = (int)i;
		x->secret_id = col_i64(r, row, 0);
		col_str(r, row, 1, x->secret, sizeof(x->secret));
		x->visibility = (int)col_i64(r, row, 2);
		x->environment_id = col_i64(r, row, 3);
		x->version = (int)col_i64(r, row, 4);
		x->valid_from = col_i64(r, row, 5);
		int rc = store__col_bytea(r, row, 6, &x->sealed, &x->sealed_len, e);
		*n = i + 1;
		if (rc)
			return rc;
	}
	return 0;
}

int store_override_rows(struct store *s, int64_t environment_id, struct store_sealed **rows,
                        size_t *n, struct cof_err *e)
{
	char a[24];
	const char *vals[1] = {I64(a, environment_id)};
	*rows = NULL;
	*n = 0;
	PGresult *r = store__exec_binary(s,
	                                 "SELECT s.id, s.name, s.visibility, v.environment_id, "
	                                 "v.version, v.valid_from, v.sealed, v.id, "
	                                 "coalesce(v.origin_id, 0) FROM secret_values v JOIN "
	                                 "secrets s ON s.id = v.secret_id WHERE v.environment_id "
	                                 "= $1 AND v.valid_to IS NULL ORDER BY s.name COLLATE "
	                                 "\"C\", v.version",
	                                 1, vals, "override rows", e);
	if (r == NULL)
		return e->code;
	int rc = sealed_rows(r, rows, n, e);
	for (size_t i = 0; rc == 0 && i < *n; i++) {
		(*rows)[i].row_id = col_i64(r, (int)i, 7);
		(*rows)[i].origin_id = col_i64(r, (int)i, 8);
	}
	PQclear(r);
	return rc;
}

/* The rows of a resolve (store_resolve_rows): $1 project, $2 environment, $3 version, $4 the
 * revision. Current rows come from the partial index of current values, one probe per secret;
 * rows at an earlier revision from the history index, the last write at or before it per secret
 * and slot. Neither reads another project's rows or a secret's older history (the tests EXPLAIN
 * both on a large database). */
const char store_sql_resolve_current[] =
        "SELECT s.id, s.name, s.visibility, coalesce(v.environment_id, 0), v.version, "
        "v.valid_from, v.sealed FROM secrets s JOIN secret_values v "
        "ON v.secret_id = s.id AND v.valid_to IS NULL "
        "AND coalesce(v.environment_id, 0) = ANY (ARRAY[0, $2::int8]) "
        "AND v.version = ANY (ARRAY[0, $3::int2]) "
        "WHERE s.project_id = $1 AND s.deleted_rev IS NULL "
        "ORDER BY s.name COLLATE \"C\", v.version";
const char store_sql_resolve_at[] =
        "SELECT s.id, s.name, s.visibility, k.env, k.version, v.valid_from, v.sealed "
        "FROM secrets s CROSS JOIN (VALUES (0::int8, 0::int2), ($2::int8, $3::int2)) "
        "k(env, version) "
        "JOIN LATERAL (SELECT x.valid_from, x.valid_to, x.sealed FROM secret_values x "
        "WHERE x.secret_id = s.id AND coalesce(x.environment_id, 0) = k.env "
        "AND x.version = k.version AND x.valid_from <= $4 "
        "ORDER BY x.valid_from DESC LIMIT 1) v ON v.valid_to IS NULL OR v.valid_to > $4 "
        "WHERE s.project_id = $1 AND s.created_rev <= $4 "
        "AND (s.deleted_rev IS NULL OR s.deleted_rev > $4) "
        "ORDER BY s.name COLLATE \"C\", k.version";

int store_resolve_rows(struct store *s, int64_t project_id, int64_t environment_id, int version,
                       int64_t at, bool current, struct store_sealed **rows, size_t *n,
                       struct cof_err *e)
{
	char a[24], b[24], c[24], d[24];
	const char *vals[4] = {I64(a, project_id), I64(b, environment_id), I64(c, version),
	                       I64(d, at)};
	*rows = NULL;
	*n = 0;
	PGresult *r = current ? store__exec_binary(s, store_sql_resolve_current, 3, vals,
	                                           "resolve rows", e)
	                      : store__exec_binary(s, store_sql_resolve_at, 4, vals,
	                                           "resolve rows at", e);
	if (r == NULL)
		return e->code;
	int rc = sealed_rows(r, rows, n, e);
	PQclear(r);
	return rc;
}
