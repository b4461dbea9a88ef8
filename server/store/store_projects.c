/*
 * store_projects.c - projects, secrets and their value rows.
 */
#include <inttypes.h>
#include <string.h>

#include "store_internal.h"

/* ---- projects ---- */

#define PROJECT_COLS                                                                               \
	"id, name, description, revision, (extract(epoch FROM create_time) * 1000000)::int8"

static void project_row(PGresult *r, int i, struct store_project *p)
{
	p->id = col_i64(r, i, 0);
	col_str(r, i, 1, p->name, sizeof(p->name));
	col_str(r, i, 2, p->description, sizeof(p->description));
	p->revision = col_i64(r, i, 3);
	p->create_us = col_i64(r, i, 4);
}

int store_project_insert(struct store *s, const char *name, const char *description,
                         struct store_project *out, struct cof_err *e)
{
	const char *vals[2] = {name, description};
	PGresult *r =
	        store__exec(s,
	                    "INSERT INTO projects (name, description, revision) VALUES ($1, $2, 1) "
	                    "RETURNING " PROJECT_COLS,
	                    2, vals, NULL, NULL, "project insert", e);
	if (r == NULL) {
		if (e->code == COF_EEXIST)
			cof_err_set(e, COF_EEXIST, "project \"%s\" already exists", name);
		return e->code;
	}
	project_row(r, 0, out);
	PQclear(r);
	store__revision_hint(s, 1);
	char id[24];
	const char *ev[1] = {I64(id, out->id)};
	return store__run(s,
	                  "INSERT INTO environments (project_id, name, description, revision, "
	                  "created_rev) VALUES ($1, 'main', '', 1, 1)",
	                  1, ev, NULL, NULL, "main environment insert", e);
}

int store_project_get(struct store *s, const char *name, struct store_project *out,
                      struct cof_err *e)
{
	const char *vals[1] = {name};
	PGresult *r = store__exec(s, "SELECT " PROJECT_COLS " FROM projects WHERE name = $1", 1,
	                          vals, NULL, NULL, "project get", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	if (PQntuples(r) == 0)
		rc = cof_err_set(e, COF_ENOTFOUND, "project \"%s\" not found", name);
	else
		project_row(r, 0, out);
	PQclear(r);
	return rc;
}

int store_project_list(struct store *s, const char *after, int limit, struct store_project *out,
                       int *n, struct cof_err *e)
{
	char lim[24];
	const char *vals[2] = {after, I64(lim, limit)};
	PGresult *r =
	        store__exec(s,
	                    "SELECT " PROJECT_COLS " FROM projects WHERE name COLLATE \"C\" > $1 "
	                    "ORDER BY name COLLATE \"C\" LIMIT $2",
	                    2, vals, NULL, NULL, "project list", e);
	if (r == NULL)
		return e->code;
	*n = PQntuples(r);
	for (int i = 0; i < *n; i++)
		project_row(r, i, &out[i]);
	PQclear(r);
	return 0;
}

int store_project_lock(struct store *s, const char *name, int64_t *id, int64_t *revision,
                       struct cof_err *e)
{
	const char *vals[1] = {name};
	PGresult *r = store__exec(s, "SELECT id, revision FROM projects WHERE name = $1 FOR UPDATE",
	                          1, vals, NULL, NULL, "project lock", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	if (PQntuples(r) == 0) {
		rc = cof_err_set(e, COF_ENOTFOUND, "project \"%s\" not found", name);
	} else {
		*id = col_i64(r, 0, 0);
		*revision = col_i64(r, 0, 1);
	}
	PQclear(r);
	return rc;
}

int store_project_usage(struct store *s, int64_t id, struct store_usage *out, struct cof_err *e)
{
	char a[24];
	const char *vals[1] = {I64(a, id)};
	PGresult *r =
	        store__exec(s,
	                    "SELECT (SELECT count(*) FROM secrets WHERE project_id = $1 AND "
	                    "deleted_rev IS NULL), "
	                    "(SELECT count(*) FROM environments WHERE project_id = $1 AND "
	                    "deleted_rev IS NULL), "
	                    "count(v.id), coalesce(sum(length(v.sealed)), 0) FROM secrets s "
	                    "JOIN secret_values v ON v.secret_id = s.id AND v.valid_to IS NULL "
	                    "WHERE s.project_id = $1 AND s.deleted_rev IS NULL",
	                    1, vals, NULL, NULL, "project usage", e);
	if (r == NULL)
		return e->code;
	out->secrets = col_i64(r, 0, 0);
	out->environments = col_i64(r, 0, 1);
	out->values = col_i64(r, 0, 2);
	out->sealed_bytes = col_i64(r, 0, 3);
	PQclear(r);
	return 0;
}

int store_project_set_revision(struct store *s, int64_t id, int64_t revision, struct cof_err *e)
{
	store__revision_hint(s, revision);
	store__changed_project(s, id, revision);
	char a[24], b[24];
	const char *vals[2] = {I64(a, id), I64(b, revision)};
	return store__run(s, "UPDATE projects SET revision = $2 WHERE id = $1", 2, vals, NULL, NULL,
	                  "project revision", e);
}

int store_project_delete(struct store *s, int64_t id, int64_t revision, struct cof_err *e)
{
	store__revision_hint(s, revision);
	store__changed_project(s, id, -1);
	char a[24];
	const char *vals[1] = {I64(a, id)};
	/* Its tokens are revoked with it (and could not reach a project of the same name anyway:
	 * they are bound to this row). */
	int rc = store__run(s,
	                    "UPDATE tokens SET revoked_time = now() WHERE project_id = $1 "
	                    "AND revoked_time IS NULL",
	                    1, vals, NULL, NULL, "project tokens revoke", e);
	return rc ? rc
	          : store__run(s, "DELETE FROM projects WHERE id = $1", 1, vals, NULL, NULL,
	                       "project delete", e);
}

/* ---- secrets ---- */

#define SECRET_COLS                                                                                \
	"s.id, s.project_id, s.name, s.visibility, s.description, s.revision, "                    \
	"(extract(epoch FROM s.create_time) * 1000000)::int8, "                                    \
	"(extract(epoch FROM s.update_time) * 1000000)::int8"

static void secret_row(PGresult *r, int i, int off, struct store_secret *p)
{
	p->id = col_i64(r, i, off + 0);
	p->project_id = col_i64(r, i, off + 1);
	col_str(r, i, off + 2, p->name, sizeof(p->name));
	p->visibility = (int)col_i64(r, i, off + 3);
	col_str(r, i, off + 4, p->description, sizeof(p->description));
	p->revision = col_i64(r, i, off + 5);
	p->create_us = col_i64(r, i, off + 6);
	p->update_us = col_i64(r, i, off + 7);
}

int store_secret_get(struct store *s, const char *project, const char *name,
                     struct store_secret *out, struct cof_err *e)
{
	const char *vals[2] = {project, name};
	PGresult *r =
	        store__exec(s,
	                    "SELECT " SECRET_COLS " FROM projects p LEFT JOIN secrets s "
	                    "ON s.project_id = p.id AND s.name = $2 AND s.deleted_rev IS NULL "
	                    "WHERE p.name = $1",
	                    2, vals, NULL, NULL, "secret get", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	if (PQntuples(r) == 0)
		rc = cof_err_set(e, COF_ENOTFOUND, "project \"%s\" not found", project);
	else if (PQgetisnull(r, 0, 0))
		rc = cof_err_set(e, COF_ENOTFOUND, "secret \"%s\" not found in project \"%s\"",
		                 name, project);
	else
		secret_row(r, 0, 0, out);
	PQclear(r);
	return rc;
}

int store_secret_find(struct store *s, int64_t project_id, const char *name,
                      struct store_secret *out, struct cof_err *e)
{
	char a[24];
	const char *vals[2] = {I64(a, project_id), name};
	PGresult *r = store__exec(s,
	                          "SELECT " SECRET_COLS " FROM secrets s WHERE s.project_id = $1 "
	                          "AND s.name = $2 AND s.deleted_rev IS NULL",
	                          2, vals, NULL, NULL, "secret find", e);
	if (r == NULL)
		return e->code;
	int rc = PQntuples(r) ? 0 : COF_ENOTFOUND;
	if (rc == 0)
		secret_row(r, 0, 0, out);
	else
		cof_err_set(e, COF_ENOTFOUND, "secret \"%s\" not found", name);
	PQclear(r);
	return rc;
}

int store_secret_list(struct store *s, const char *project, const char *after, int limit,
                      struct store_secret *out, int *n, struct cof_err *e)
{
	char lim[24];
	const char *vals[3] = {project, after, I64(lim, limit)};
	/* The first row says whether the project exists; secrets follow. */
	PGresult *r =
	        store__exec(s,
	                    "SELECT " SECRET_COLS " FROM projects p LEFT JOIN LATERAL ("
	                    "  SELECT * FROM secrets x WHERE x.project_id = p.id AND "
	                    "  x.deleted_rev IS NULL AND x.name COLLATE \"C\" > $2 "
	                    "  ORDER BY x.name COLLATE \"C\" LIMIT $3) s ON true WHERE p.name = $1 "
	                    "ORDER BY s.name COLLATE \"C\"",
	                    3, vals, NULL, NULL, "secret list", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	*n = 0;
	if (PQntuples(r) == 0) {
		rc = cof_err_set(e, COF_ENOTFOUND, "project \"%s\" not found", project);
	} else {
		for (int i = 0; i < PQntuples(r); i++)
			if (!PQgetisnull(r, i, 0))
				secret_row(r, i, 0, &out[(*n)++]);
	}
	PQclear(r);
	return rc;
}

int store_secret_insert(struct store *s, int64_t project_id, const char *name, int visibility,
                        const char *description, int64_t revision, struct store_secret *out,
                        struct cof_err *e)
{
	char a[24], b[24], c[24];
	const char *vals[5] = {I64(a, project_id), name, I64(b, visibility), description,
	                       I64(c, revision)};
	PGresult *r =
	        store__exec(s,
	                    "INSERT INTO secrets AS s (project_id, name, visibility, description, "
	                    "revision, created_rev) VALUES ($1, $2, $3, $4, $5, $5) "
	                    "RETURNING " SECRET_COLS,
	                    5, vals, NULL, NULL, "secret insert", e);
	if (r == NULL)
		return e->code;
	secret_row(r, 0, 0, out);
	PQclear(r);
	return 0;
}

int store_secret_update(struct store *s, int64_t secret_id, int visibility, const char *description,
                        int64_t revision, struct store_secret *out, struct cof_err *e)
{
	char a[24], b[24], c[24];
	const char *vals[4] = {I64(a, secret_id), I64(b, visibility), description,
	                       I64(c, revision)};
	PGresult *r = store__exec(
	        s,
	        "UPDATE secrets AS s SET visibility = $2, description = $3, revision = $4, "
	        "update_time = now() WHERE id = $1 RETURNING " SECRET_COLS,
	        4, vals, NULL, NULL, "secret update", e);
	if (r == NULL)
		return e->code;
	secret_row(r, 0, 0, out);
	PQclear(r);
	return 0;
}

int store_secret_delete(struct store *s, int64_t secret_id, int64_t revision, struct cof_err *e)
{
	char a[24], b[24];
	const char *vals[2] = {I64(a, secret_id), I64(b, revision)};
	return store__run(s,
	                  "WITH d AS (UPDATE secrets SET deleted_rev = $2, revision = $2, "
	                  "update_time = now() WHERE id = $1) "
	                  "UPDATE secret_values SET valid_to = $2 WHERE secret_id = $1 "
	                  "AND valid_to IS NULL",
	                  2, vals, NULL, NULL, "secret delete", e);
}

/* ---- values ---- */

int store_value_put(struct store *s, int64_t secret_id, int64_t environment_id, int version,
                    int64_t revision, int32_t term, const uint8_t *sealed, size_t len,
                    int64_t origin_id, struct cof_err *e)
{
	char a[24], b[24], c[24], d[24], t[24], o[24];
	const char *vals[7] = {I64(a, secret_id), I64(b, environment_id), I64(c, version),
	                       I64(d, revision),  I64(t, term),           (const char *)sealed,
	                       I64(o, origin_id)};
	int lens[7] = {0, 0, 0, 0, 0, (int)len, 0};
	int fmts[7] = {0, 0, 0, 0, 0, 1, 0};
	int rc = store__run(
	        s,
	        "UPDATE secret_values SET valid_to = $4 WHERE secret_id = $1 "
	        "AND coalesce(environment_id, 0) = $2 AND version = $3 AND valid_to IS NULL",
	        4, vals, NULL, NULL, "value end", e);
	if (rc)
		return rc;
	return store__run(
	        s,
	        "INSERT INTO secret_values (secret_id, environment_id, version, valid_from, term, "
	        "sealed, origin_id) VALUES ($1, nullif($2::int8, 0), $3, $4, $5, $6, "
	        "nullif($7::int8, 0))",
	        7, vals, lens, fmts, "value put", e);
}

int store_value_current(struct store *s, int64_t secret_id, int64_t environment_id, int version,
                        struct store_value *out, struct cof_err *e)
{
	memset(out, 0, sizeof(*out));
	char a[24], b[24], c[24];
	const char *vals[3] = {I64(a, secret_id), I64(b, environment_id), I64(c, version)};
	PGresult *r = store__exec(
	        s,
	        "SELECT valid_from, term, sealed FROM secret_values WHERE secret_id = $1 "
	        "AND coalesce(environment_id, 0) = $2 AND version = $3 AND valid_to IS NULL",
	        3, vals, NULL, NULL, "value get", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	if (PQntuples(r) == 0) {
		rc = cof_err_set(e, COF_ENOTFOUND, "no value");
	} else {
		out->valid_from = col_i64(r, 0, 0);
		out->term = (int32_t)col_i64(r, 0, 1);
		rc = store__col_bytea(r, 0, 2, &out->sealed, &out->sealed_len, e);
	}
	PQclear(r);
	return rc;
}

int store_value_end(struct store *s, int64_t secret_id, int64_t environment_id, int version,
                    int64_t revision, struct cof_err *e)
{
	char a[24], b[24], c[24], d[24];
	const char *vals[4] = {I64(a, secret_id), I64(b, environment_id), I64(c, version),
	                       I64(d, revision)};
	PGresult *r = store__exec(s,
	                          "UPDATE secret_values SET valid_to = $4 WHERE secret_id = $1 "
	                          "AND coalesce(environment_id, 0) = $2 AND version = $3 "
	                          "AND valid_to IS NULL",
	                          4, vals, NULL, NULL, "value end", e);
	if (r == NULL)
		return e->code;
	int rc = strcmp(PQcmdTuples(r), "0") == 0 ? cof_err_set(e, COF_ENOTFOUND, "no value") : 0;
	PQclear(r);
	return rc;
}

void store_value_clear(struct store_value *v)
{
	if (v == NULL)
		return;
	free(v->sealed);
	memset(v, 0, sizeof(*v));
}

/* ---- set-based value writes ---- */

int store_values_replace(struct store *s, int64_t environment_id, int64_t revision,
                         const struct store_value_write *w, size_t n, struct cof_err *e)
{
	if (n == 0)
		return 0;
	/* The values ended: two array literals, {1,2,3}, unnested by one UPDATE. */
	struct store_text ids = {.ok = true}, vers = {.ok = true}, rows = {.ok = true};
	store__text_put(&ids, "{", 1);
	store__text_put(&vers, "{", 1);
	/* The values written: one COPY in binary format (no text to parse, the sealed bytes as
	 * they are). */
	store__bin_start(&rows);
	size_t written = 0;
	for (size_t i = 0; i < n; i++) {
		store__text_i64(&ids, w[i].secret_id);
		store__text_i64(&vers, w[i].version);
		if (w[i].sealed == NULL)
			continue;
		store__bin_row(&rows, 7);
		store__bin_int(&rows, w[i].secret_id, 8);
		if (environment_id)
			store__bin_int(&rows, environment_id, 8);
		else
			store__bin_null(&rows);
		store__bin_int(&rows, w[i].version, 2);
		store__bin_int(&rows, revision, 8);
		store__bin_int(&rows, w[i].term, 4);
		store__bin_bytes(&rows, w[i].sealed, w[i].sealed_len);
		if (w[i].origin_id)
			store__bin_int(&rows, w[i].origin_id, 8);
		else
			store__bin_null(&rows);
		written++;
	}
	store__text_put(&ids, "}", 1);
	store__text_put(&vers, "}", 1);
	store__bin_end(&rows);
	int rc;
	if (!ids.ok || !vers.ok || !rows.ok) {
		rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		goto out;
	}
	char a[24], b[24];
	const char *end_vals[4] = {I64(a, environment_id), I64(b, revision), ids.p, vers.p};
	rc = store__run(s,
	                "UPDATE secret_values v SET valid_to = $2 FROM unnest($3::int8[], "
	                "$4::int2[]) u(secret_id, version) WHERE v.secret_id = u.secret_id "
	                "AND coalesce(v.environment_id, 0) = $1 AND v.version = u.version "
	                "AND v.valid_to IS NULL",
	                4, end_vals, NULL, NULL, "values end", e);
	if (rc == 0 && written > 0)
		rc = store__copy_in(
		        s,
		        "COPY secret_values (secret_id, environment_id, version, "
		        "valid_from, term, sealed, origin_id) FROM STDIN (FORMAT binary)",
		        rows.p, rows.len, "values put", e);
out:
	free(ids.p);
	free(vers.p);
	free(rows.p);
	return rc;
}

int store_secrets_touched(struct store *s, int64_t project_id, int64_t after, char ***names,
                          size_t *n, struct cof_err *e)
{
	char a[24], b[24];
	const char *vals[2] = {I64(a, project_id), I64(b, after)};
	*names = NULL;
	*n = 0;
	PGresult *r = store__exec(s,
	                          "SELECT DISTINCT name FROM secrets WHERE project_id = $1 "
	                          "AND revision > $2",
	                          2, vals, NULL, NULL, "secrets touched", e);
	if (r == NULL)
		return e->code;
	size_t count = (size_t)PQntuples(r);
	*names = calloc(count + 1, sizeof(**names));
	int rc = *names ? 0 : cof_err_set(e, COF_EINTERNAL, "out of memory");
	for (size_t i = 0; rc == 0 && i < count; i++) {
		(*names)[i] = strdup(PQgetvalue(r, (int)i, 0));
		if ((*names)[i] == NULL)
			rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		else
			(*n)++;
	}
	PQclear(r);
	return rc;
}

void store_names_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}
