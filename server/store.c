/*
 * store.c - connection, transactions, SQLSTATE mapping, keyring, projects, secrets and values.
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "store_internal.h"

struct store {
	PGconn *conn;             /* the connection, possibly broken */
	char *url;                /* to reconnect */
	int64_t timeout_ms;       /* statement_timeout in force, 0 = unknown */
	bool in_tx;               /* between store_begin and commit/rollback */
	struct store_audit audit; /* written by the next commit when audit_pending */
	bool audit_pending;       /* an audit row waits for the commit */
	bool audit_committed;     /* the last commit wrote it */
	int64_t revision_hint;    /* the revision the open transaction writes */
};

/* ---- errors ---- */

int store__fail(struct store *s, PGresult *res, const char *what, struct cof_err *e)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (primary == NULL)
		primary = PQerrorMessage(s->conn);
	cof_err_detail(e, "%s: %s%s%s", what, state ? state : "", state ? " " : "", primary);
	if (PQstatus(s->conn) != CONNECTION_OK || state == NULL || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P", 3) == 0)
		return cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return cof_err_set(e, COF_ERETRY, "a concurrent change interfered; try again");
	if (strcmp(state, "57014") == 0)
		return cof_err_set(e, COF_EDEADLINE,
		                   "the database did not answer before the deadline");
	if (strcmp(state, "23505") == 0)
		return cof_err_set(e, COF_EEXIST, "already exists");
	return cof_err_set(e, COF_EINTERNAL, "internal storage error");
}

PGresult *store__exec(struct store *s, const char *sql, int n, const char *const *vals,
                      const int *lens, const int *fmts, const char *what, struct cof_err *e)
{
	PGresult *res = PQexecParams(s->conn, sql, n, NULL, vals, lens, fmts, 0);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	store__fail(s, res, what, e);
	PQclear(res);
	return NULL;
}

int store__run(struct store *s, const char *sql, int n, const char *const *vals, const int *lens,
               const int *fmts, const char *what, struct cof_err *e)
{
	PGresult *r = store__exec(s, sql, n, vals, lens, fmts, what, e);
	if (r == NULL)
		return e && e->code ? e->code : COF_EINTERNAL;
	PQclear(r);
	return 0;
}

PGconn *store__conn(struct store *s)
{
	return s->conn;
}

int store__col_bytea(PGresult *r, int row, int col, uint8_t **out, size_t *len, struct cof_err *e)
{
	*out = NULL;
	*len = 0;
	size_t n = 0;
	unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
	if (raw == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	*out = malloc(n ? n : 1);
	if (*out != NULL) {
		memcpy(*out, raw, n);
		*len = n;
	}
	PQfreemem(raw);
	return *out ? 0 : cof_err_set(e, COF_EINTERNAL, "out of memory");
}

/* ---- connection ---- */

/* Server notices (NOTICE, WARNING) go to the debug log, not to stderr. */
static void on_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("database notice: %s", message);
}

int store_open(const char *url, struct store **out, struct cof_err *e)
{
	*out = NULL;
	struct store *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->url = strdup(url ? url : "")) == NULL) {
		free(s);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	*out = s;
	s->conn = PQconnectdb(s->url);
	PQsetNoticeProcessor(s->conn, on_notice, NULL);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		cof_err_detail(e, "connect: %s", PQerrorMessage(s->conn));
		return cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
	}
	return 0;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	PQfinish(s->conn);
	free(s->url);
	free(s);
}

int store_call_begin(struct store *s, int64_t timeout_ms, struct cof_err *e)
{
	if (PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) == PQTRANS_UNKNOWN) {
		PQreset(s->conn);
		s->timeout_ms = 0;
		s->in_tx = false;
		if (PQstatus(s->conn) != CONNECTION_OK) {
			cof_err_detail(e, "reconnect: %s", PQerrorMessage(s->conn));
			return cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
		}
	}
	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		store_rollback(s);
	if (timeout_ms < 1)
		timeout_ms = 1;
	if (timeout_ms != s->timeout_ms) {
		char sql[64];
		snprintf(sql, sizeof(sql), "SET statement_timeout = %" PRId64, timeout_ms);
		PGresult *r = store__exec(s, sql, 0, NULL, NULL, NULL, "set timeout", e);
		if (r == NULL)
			return e ? e->code : COF_EUNAVAIL;
		PQclear(r);
		s->timeout_ms = timeout_ms;
	}
	return 0;
}

bool store_ping(struct store *s)
{
	/* A connection that went stale while idle gets one fresh attempt. */
	for (int attempt = 0; attempt < 2; attempt++) {
		if (PQstatus(s->conn) != CONNECTION_OK) {
			PQreset(s->conn);
			s->timeout_ms = 0;
		}
		PGresult *r = PQexec(s->conn, "SELECT 1");
		bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		if (ok)
			return true;
	}
	return false;
}

static int simple(struct store *s, const char *sql, struct cof_err *e)
{
	return store__run(s, sql, 0, NULL, NULL, NULL, sql, e);
}

int store_begin(struct store *s, struct cof_err *e)
{
	int rc = simple(s, "BEGIN", e);
	s->in_tx = rc == 0;
	return rc;
}

int store_begin_snapshot(struct store *s, struct cof_err *e)
{
	int rc = simple(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", e);
	s->in_tx = rc == 0;
	return rc;
}

void store_audit_set(struct store *s, const struct store_audit *ev)
{
	s->audit_pending = ev != NULL;
	s->audit_committed = false;
	s->revision_hint = 0;
	if (ev)
		s->audit = *ev;
}

bool store_audit_committed(const struct store *s)
{
	return s->audit_committed;
}

void store__revision_hint(struct store *s, int64_t revision)
{
	s->revision_hint = revision;
}

int store_commit(struct store *s, struct cof_err *e)
{
	if (s->audit_pending) {
		s->audit.revision = s->revision_hint;
		s->audit.code = 0;
		int rc = store__audit_row(s, &s->audit, e);
		if (rc) {
			store_rollback(s);
			cof_err_detail(e, "audit insert: %s", e->detail);
			return cof_err_set(e, COF_EUNAVAIL, "the audit log is unavailable");
		}
		s->audit_pending = false;
		s->audit_committed = true;
	}
	s->in_tx = false;
	return simple(s, "COMMIT", e);
}

void store_rollback(struct store *s)
{
	s->in_tx = false;
	if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
		PGresult *r = PQexec(s->conn, "ROLLBACK");
		PQclear(r);
	}
}

/* ---- keyring ---- */

int store_keyring_load(struct store *s, store_keyring_fn fn, void *arg, struct cof_err *e)
{
	PGresult *r = store__exec(s, "SELECT term, wrapped, active FROM keyring ORDER BY term", 0,
	                          NULL, NULL, NULL, "keyring load", e);
	if (r == NULL)
		return e ? e->code : COF_EINTERNAL;
	int rc = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		size_t len = 0;
		unsigned char *w =
		        PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 1), &len);
		if (w == NULL) {
			rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
			break;
		}
		rc = fn(arg, (int32_t)col_i64(r, i, 0), w, len, PQgetvalue(r, i, 2)[0] == 't', e);
		PQfreemem(w);
	}
	PQclear(r);
	return rc;
}

int store_keyring_insert(struct store *s, int32_t term, const uint8_t *wrapped, size_t len,
                         bool active, struct cof_err *e)
{
	char t[24];
	const char *vals[3] = {I64(t, term), (const char *)wrapped, active ? "t" : "f"};
	int lens[3] = {0, (int)len, 0};
	int fmts[3] = {0, 1, 0};
	return store__run(s,
	                  "INSERT INTO keyring (term, wrapped, active) VALUES ($1, $2, $3) "
	                  "ON CONFLICT DO NOTHING",
	                  3, vals, lens, fmts, "keyring insert", e);
}

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

int store_project_create(struct store *s, const char *name, const char *description,
                         struct store_project *out, struct cof_err *e)
{
	const char *vals[2] = {name, description};
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	PGresult *r =
	        store__exec(s,
	                    "INSERT INTO projects (name, description, revision) VALUES ($1, $2, 1) "
	                    "RETURNING " PROJECT_COLS,
	                    2, vals, NULL, NULL, "project insert", e);
	if (r == NULL) {
		rc = e->code;
		if (rc == COF_EEXIST)
			cof_err_set(e, COF_EEXIST, "project \"%s\" already exists", name);
		goto out_rollback;
	}
	project_row(r, 0, out);
	PQclear(r);
	store__revision_hint(s, 1);
	char id[24];
	const char *ev[1] = {I64(id, out->id)};
	if ((rc = store__run(s,
	                     "INSERT INTO environments (project_id, name, description, revision, "
	                     "created_rev) "
	                     "VALUES ($1, 'main', '', 1, 1)",
	                     1, ev, NULL, NULL, "main environment insert", e)))
		goto out_rollback;
	return store_commit(s, e);
out_rollback:
	store_rollback(s);
	return rc;
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

int store_project_set_revision(struct store *s, int64_t id, int64_t revision, struct cof_err *e)
{
	store__revision_hint(s, revision);
	char a[24], b[24];
	const char *vals[2] = {I64(a, id), I64(b, revision)};
	return store__run(s, "UPDATE projects SET revision = $2 WHERE id = $1", 2, vals, NULL, NULL,
	                  "project revision", e);
}

int store_project_delete(struct store *s, const char *name, int64_t expected_revision,
                         struct cof_err *e)
{
	int64_t id = 0, rev = 0;
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	rc = store_project_lock(s, name, &id, &rev, e);
	if (rc)
		goto out_rollback;
	if (expected_revision != 0 && expected_revision != rev) {
		rc = cof_err_set(e, COF_ECONFLICT,
		                 "project \"%s\" is at revision %" PRId64 ", not %" PRId64, name,
		                 rev, expected_revision);
		goto out_rollback;
	}
	store__revision_hint(s, rev);
	char a[24];
	const char *vals[1] = {I64(a, id)};
	if ((rc = store__run(s, "DELETE FROM projects WHERE id = $1", 1, vals, NULL, NULL,
	                     "project delete", e)))
		goto out_rollback;
	return store_commit(s, e);
out_rollback:
	store_rollback(s);
	return rc;
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
                    struct cof_err *e)
{
	char a[24], b[24], c[24], d[24], t[24];
	const char *vals[6] = {I64(a, secret_id), I64(b, environment_id), I64(c, version),
	                       I64(d, revision),  I64(t, term),           (const char *)sealed};
	int lens[6] = {0, 0, 0, 0, 0, (int)len};
	int fmts[6] = {0, 0, 0, 0, 0, 1};
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
	        "sealed) VALUES ($1, nullif($2::int8, 0), $3, $4, $5, $6)",
	        6, vals, lens, fmts, "value put", e);
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

void store_value_clear(struct store_value *v)
{
	if (v == NULL)
		return;
	free(v->sealed);
	memset(v, 0, sizeof(*v));
}
