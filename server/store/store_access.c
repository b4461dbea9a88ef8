/*
 * store_access.c - tokens and audit rows.
 */
#include <string.h>

#include "store_internal.h"

#define TOKEN_COLS                                                                                 \
	"id, name, role, project, array_to_string(environments, ','), "                            \
	"coalesce((SELECT sum(1 << v) FROM unnest(versions) v), 0)::int, "                         \
	"(extract(epoch FROM create_time) * 1000000)::int8, "                                      \
	"coalesce((extract(epoch FROM expire_time) * 1000000)::int8, 0), "                         \
	"(revoked_time IS NULL AND (expire_time IS NULL OR expire_time > now()) "                  \
	" AND (project = '' OR project_id IS NOT NULL)), secret_hash"

static void token_row(PGresult *r, int i, struct store_token *t)
{
	memset(t, 0, sizeof(*t));
	col_str(r, i, 0, t->id, sizeof(t->id));
	col_str(r, i, 1, t->name, sizeof(t->name));
	t->role = (int)col_i64(r, i, 2);
	col_str(r, i, 3, t->project, sizeof(t->project));
	char envs[LIMIT_TOKEN_ENVS * LIMIT_NAME_BUF];
	col_str(r, i, 4, envs, sizeof(envs));
	for (char *save = NULL, *tok = strtok_r(envs, ",", &save);
	     tok && t->n_envs < LIMIT_TOKEN_ENVS; tok = strtok_r(NULL, ",", &save))
		snprintf(t->envs[t->n_envs++], LIMIT_NAME_BUF, "%s", tok);
	t->versions = (int)col_i64(r, i, 5) >> 1;
	t->create_us = col_i64(r, i, 6);
	t->expire_us = col_i64(r, i, 7);
	t->usable = PQgetvalue(r, i, 8)[0] == 't';
}

/* '{a,b}' from names that are slugs or digits (no quoting needed). */
static void array_literal(char *out, size_t cap, const char *const *items, int n)
{
	size_t len = (size_t)snprintf(out, cap, "{");
	for (int i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", items[i]);
	if (len < cap)
		snprintf(out + len, cap - len, "}");
}

int store_token_insert(struct store *s, const struct store_token *t, const uint8_t *hash,
                       size_t hash_len, int64_t ttl_seconds, struct store_token *out,
                       struct cof_err *e)
{
	const char *envp[LIMIT_TOKEN_ENVS];
	for (int i = 0; i < t->n_envs; i++)
		envp[i] = t->envs[i];
	char envs[LIMIT_TOKEN_ENVS * LIMIT_NAME_BUF + 4], versions[16], role[24], ttl[24];
	array_literal(envs, sizeof(envs), envp, t->n_envs);
	const char *vs[2];
	int nv = 0;
	if (t->versions & 1)
		vs[nv++] = "1";
	if (t->versions & 2)
		vs[nv++] = "2";
	array_literal(versions, sizeof(versions), vs, nv);
	const char *vals[8] = {t->id, t->name,  I64(role, t->role), t->project,
	                       envs,  versions, (const char *)hash, I64(ttl, ttl_seconds)};
	int lens[8] = {0, 0, 0, 0, 0, 0, (int)hash_len, 0};
	int fmts[8] = {0, 0, 0, 0, 0, 0, 1, 0};
	PGresult *r = store__exec(
	        s,
	        "INSERT INTO tokens (id, name, role, project, project_id, environments, versions, "
	        "secret_hash, expire_time) VALUES ($1, $2, $3, $4, "
	        "(SELECT id FROM projects WHERE name = $4), $5, $6, $7, "
	        "CASE WHEN $8::int8 > 0 THEN now() + make_interval(secs => $8::int8) END) "
	        "RETURNING " TOKEN_COLS,
	        8, vals, lens, fmts, "token insert", e);
	if (r == NULL)
		return e->code;
	token_row(r, 0, out);
	PQclear(r);
	return 0;
}

int store_token_by_hash(struct store *s, const uint8_t *hash, size_t hash_len,
                        struct store_token *out, uint8_t *stored_hash, struct cof_err *e)
{
	const char *vals[1] = {(const char *)hash};
	int lens[1] = {(int)hash_len};
	int fmts[1] = {1};
	PGresult *r = store__exec(s, "SELECT " TOKEN_COLS " FROM tokens WHERE secret_hash = $1", 1,
	                          vals, lens, fmts, "token lookup", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	if (PQntuples(r) == 0) {
		rc = cof_err_set(e, COF_ENOTFOUND, "no such token");
	} else {
		token_row(r, 0, out);
		uint8_t *h = NULL;
		size_t n = 0;
		rc = store__col_bytea(r, 0, 9, &h, &n, e);
		if (rc == 0 && n == hash_len)
			memcpy(stored_hash, h, n);
		else if (rc == 0)
			rc = cof_err_set(e, COF_EINTERNAL, "a stored token hash is damaged");
		free(h);
	}
	PQclear(r);
	return rc;
}

int store_token_list(struct store *s, const char *project, bool all_projects, const char *after,
                     int limit, struct store_token *out, int *n, struct cof_err *e)
{
	char lim[24];
	const char *vals[4] = {project, all_projects ? "t" : "f", after, I64(lim, limit)};
	PGresult *r = store__exec(s,
	                          "SELECT " TOKEN_COLS " FROM tokens WHERE revoked_time IS NULL "
	                          "AND ($2 OR project = $1) AND id > $3 ORDER BY id LIMIT $4",
	                          4, vals, NULL, NULL, "token list", e);
	if (r == NULL)
		return e->code;
	*n = PQntuples(r);
	for (int i = 0; i < *n; i++)
		token_row(r, i, &out[i]);
	PQclear(r);
	return 0;
}

int store_token_revoke(struct store *s, const char *id, struct cof_err *e)
{
	const char *vals[1] = {id};
	PGresult *r = store__exec(s,
	                          "UPDATE tokens SET revoked_time = now() WHERE id = $1 "
	                          "AND revoked_time IS NULL",
	                          1, vals, NULL, NULL, "token revoke", e);
	if (r == NULL)
		return e->code;
	int rc = strcmp(PQcmdTuples(r), "1") == 0
	                 ? 0
	                 : cof_err_set(e, COF_ENOTFOUND, "token \"%s\" not found", id);
	PQclear(r);
	if (rc == 0)
		store__changed_token(s, id);
	return rc;
}

int store_token_count(struct store *s, int64_t *n, struct cof_err *e)
{
	PGresult *r = store__exec(s, "SELECT count(*) FROM tokens", 0, NULL, NULL, NULL,
	                          "token count", e);
	if (r == NULL)
		return e->code;
	*n = col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

/* ---- console sessions ---- */

int store_session_insert(struct store *s, const uint8_t *hash, size_t hash_len,
                         const char *token_id, int max_seconds, int idle_seconds,
                         int64_t *expire_us, struct cof_err *e)
{
	char max[24], idle[24];
	const char *vals[4] = {(const char *)hash, token_id, I64(max, max_seconds),
	                       I64(idle, idle_seconds)};
	int lens[4] = {(int)hash_len, 0, 0, 0};
	int fmts[4] = {1, 0, 0, 0};
	/* Sessions that have ended go as new ones come: the table holds live sessions only. */
	int rc = store__run(s,
	                    "DELETE FROM console_sessions WHERE expire_time < now() OR "
	                    "last_seen < now() - make_interval(secs => $1::int)",
	                    1, vals + 3, NULL, NULL, "session sweep", e);
	if (rc)
		return rc;
	PGresult *r = store__exec(
	        s,
	        "INSERT INTO console_sessions (secret_hash, token_id, expire_time) VALUES ($1, $2, "
	        "now() + make_interval(secs => $3::int)) "
	        "RETURNING (extract(epoch FROM expire_time) * 1000000)::int8",
	        3, vals, lens, fmts, "session insert", e);
	if (r == NULL)
		return e->code;
	*expire_us = col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int store_session_use(struct store *s, const uint8_t *hash, size_t hash_len, int idle_seconds,
                      struct store_token *out, int64_t *expire_us, struct cof_err *e)
{
	char idle[24];
	const char *vals[2] = {(const char *)hash, I64(idle, idle_seconds)};
	int lens[2] = {(int)hash_len, 0};
	int fmts[2] = {1, 0};
	PGresult *r = store__exec(
	        s,
	        "WITH used AS (UPDATE console_sessions SET last_seen = now() WHERE secret_hash = "
	        "$1 "
	        "AND expire_time > now() AND last_seen > now() - make_interval(secs => $2::int) "
	        "RETURNING token_id, expire_time AS session_end) "
	        "SELECT " TOKEN_COLS ", (extract(epoch FROM session_end) * 1000000)::int8 "
	        "FROM tokens JOIN used ON tokens.id = used.token_id",
	        2, vals, lens, fmts, "session lookup", e);
	if (r == NULL)
		return e->code;
	int rc = 0;
	if (PQntuples(r) == 0) {
		rc = cof_err_set(e, COF_ENOTFOUND, "no such session");
	} else {
		token_row(r, 0, out);
		*expire_us = col_i64(r, 0, 10);
	}
	PQclear(r);
	return rc;
}

int store_session_delete(struct store *s, const uint8_t *hash, size_t hash_len, struct cof_err *e)
{
	const char *vals[1] = {(const char *)hash};
	int lens[1] = {(int)hash_len};
	int fmts[1] = {1};
	return store__run(s, "DELETE FROM console_sessions WHERE secret_hash = $1", 1, vals, lens,
	                  fmts, "session delete", e);
}

int store_audit_insert(struct store *s, const struct audit_row *rows, size_t n, struct cof_err *e)
{
	/* One COPY for the whole batch: the cheapest way into the table for PostgreSQL, one
	 * statement that is its own transaction (or part of the caller's). */
	struct store_text t = {.ok = true};
	for (size_t i = 0; i < n; i++) {
		const struct audit_row *r = &rows[i];
		store__copy_str(&t, r->token_id, false);
		store__copy_str(&t, r->method, false);
		store__copy_str(&t, r->project, false);
		store__copy_str(&t, r->environment, false);
		store__copy_str(&t, r->secret, false);
		store__copy_i64(&t, r->version, false);
		store__copy_i64(&t, r->code, false);
		store__copy_str(&t, r->peer, false);
		store__copy_i64(&t, r->revision, false);
		store__copy_i64(&t, r->count > 1 ? r->count : 1, false);
		store__copy_str(&t, r->transport[0] ? r->transport : "grpc", true);
	}
	int rc = t.ok ? store__copy_in(s,
	                               "COPY audit_events (token_id, method, project, environment, "
	                               "secret, version, code, peer, revision, count, transport) "
	                               "FROM STDIN",
	                               t.p ? t.p : "", t.len, "audit insert", e)
	              : cof_err_set(e, COF_EINTERNAL, "out of memory");
	free(t.p);
	return rc;
}

int store_audit_list(struct store *s, const char *project, bool all_projects, int64_t since_us,
                     int64_t after_id, int limit, struct audit_row *out, int *n, struct cof_err *e)
{
	char since[24], after[24], lim[24];
	const char *vals[5] = {project, all_projects ? "t" : "f", I64(since, since_us),
	                       I64(after, after_id), I64(lim, limit)};
	PGresult *r = store__exec(
	        s,
	        "SELECT id, (extract(epoch FROM time) * 1000000)::int8, token_id, method, project, "
	        "environment, secret, version, code, peer, revision, count, transport FROM "
	        "audit_events "
	        "WHERE ($2 OR project = $1) AND time >= to_timestamp($3::int8 / 1000000.0) "
	        "AND id > $4 ORDER BY id LIMIT $5",
	        5, vals, NULL, NULL, "audit list", e);
	if (r == NULL)
		return e->code;
	*n = PQntuples(r);
	for (int i = 0; i < *n; i++) {
		struct audit_row *a = &out[i];
		memset(a, 0, sizeof(*a));
		a->id = col_i64(r, i, 0);
		a->time_us = col_i64(r, i, 1);
		col_str(r, i, 2, a->token_id, sizeof(a->token_id));
		col_str(r, i, 3, a->method, sizeof(a->method));
		col_str(r, i, 4, a->project, sizeof(a->project));
		col_str(r, i, 5, a->environment, sizeof(a->environment));
		col_str(r, i, 6, a->secret, sizeof(a->secret));
		a->version = (int)col_i64(r, i, 7);
		a->code = (int)col_i64(r, i, 8);
		col_str(r, i, 9, a->peer, sizeof(a->peer));
		a->revision = col_i64(r, i, 10);
		a->count = col_i64(r, i, 11);
		col_str(r, i, 12, a->transport, sizeof(a->transport));
	}
	PQclear(r);
	return 0;
}
