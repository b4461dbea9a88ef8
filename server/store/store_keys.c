/*
 * store_keys.c - the keyring and server keys, and key maintenance: rotation, rewrap batches,
 * root-key replacement.
 */
#include <string.h>

#include "store_internal.h"

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

int store_keyring_lock(struct store *s, int32_t *max, struct cof_err *e)
{
	int rc = store__run(s, "LOCK TABLE keyring IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL,
	                    NULL, "keyring lock", e);
	if (rc)
		return rc;
	PGresult *r = store__exec(s, "SELECT coalesce(max(term), 0) FROM keyring", 0, NULL, NULL,
	                          NULL, "keyring max", e);
	if (r == NULL)
		return e->code;
	*max = (int32_t)col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int store_keyring_activate(struct store *s, int32_t term, const uint8_t *wrapped, size_t len,
                           struct cof_err *e)
{
	int rc = store__run(s, "UPDATE keyring SET active = false WHERE active", 0, NULL, NULL,
	                    NULL, "keyring deactivate", e);
	if (rc)
		return rc;
	char t[24];
	const char *vals[2] = {I64(t, term), (const char *)wrapped};
	int lens[2] = {0, (int)len};
	int fmts[2] = {0, 1};
	return store__run(s, "INSERT INTO keyring (term, wrapped, active) VALUES ($1, $2, true)", 2,
	                  vals, lens, fmts, "keyring add", e);
}

int store_keyring_set_wrapped(struct store *s, int32_t term, const uint8_t *wrapped, size_t len,
                              struct cof_err *e)
{
	char t[24];
	const char *vals[2] = {I64(t, term), (const char *)wrapped};
	int lens[2] = {0, (int)len};
	int fmts[2] = {0, 1};
	return store__run(s, "UPDATE keyring SET wrapped = $2 WHERE term = $1", 2, vals, lens, fmts,
	                  "keyring rewrap", e);
}

int store_server_key_set(struct store *s, const char *name, const uint8_t *wrapped, size_t len,
                         struct cof_err *e)
{
	const char *vals[2] = {name, (const char *)wrapped};
	int lens[2] = {0, (int)len};
	int fmts[2] = {0, 1};
	return store__run(s, "UPDATE server_keys SET wrapped = $2 WHERE name = $1", 2, vals, lens,
	                  fmts, "server key rewrap", e);
}

int store_server_key_get(struct store *s, const char *name, uint8_t **wrapped, size_t *len,
                         struct cof_err *e)
{
	const char *vals[1] = {name};
	PGresult *r = store__exec(s, "SELECT wrapped FROM server_keys WHERE name = $1", 1, vals,
	                          NULL, NULL, "server key get", e);
	if (r == NULL)
		return e->code;
	int rc = PQntuples(r) ? store__col_bytea(r, 0, 0, wrapped, len, e)
	                      : cof_err_set(e, COF_ENOTFOUND, "no server key %s", name);
	PQclear(r);
	return rc;
}

int store_server_key_insert(struct store *s, const char *name, const uint8_t *wrapped, size_t len,
                            struct cof_err *e)
{
	const char *vals[2] = {name, (const char *)wrapped};
	int lens[2] = {0, (int)len};
	int fmts[2] = {0, 1};
	return store__run(s,
	                  "INSERT INTO server_keys (name, wrapped) VALUES ($1, $2) "
	                  "ON CONFLICT DO NOTHING",
	                  2, vals, lens, fmts, "server key insert", e);
}

int store_values_count(struct store *s, int32_t term, int64_t *n, struct cof_err *e)
{
	char t[24];
	const char *vals[1] = {I64(t, term)};
	PGresult *r =
	        store__exec(s, "SELECT count(*) FROM secret_values WHERE $1 = 0 OR term <> $1", 1,
	                    vals, NULL, NULL, "value count", e);
	if (r == NULL)
		return e->code;
	*n = col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int store_values_for_rewrap(struct store *s, int32_t term, int64_t after, int limit, bool lock,
                            struct store_sealed **rows, size_t *n, struct cof_err *e)
{
	char t[24], a[24], l[24];
	const char *vals[3] = {I64(t, term), I64(a, after), I64(l, limit)};
	*rows = NULL;
	*n = 0;
	PGresult *r = store__exec(
	        s,
	        lock ? "SELECT v.id, s.project_id, s.id, s.name, s.visibility, "
	               "coalesce(v.environment_id, 0), v.version, v.valid_from, v.term, v.sealed "
	               "FROM secret_values v JOIN secrets s ON s.id = v.secret_id "
	               "WHERE ($1 = 0 OR v.term <> $1) AND v.id > $2 ORDER BY v.id LIMIT $3 "
	               "FOR UPDATE OF v SKIP LOCKED"
	             : "SELECT v.id, s.project_id, s.id, s.name, s.visibility, "
	               "coalesce(v.environment_id, 0), v.version, v.valid_from, v.term, v.sealed "
	               "FROM secret_values v JOIN secrets s ON s.id = v.secret_id "
	               "WHERE ($1 = 0 OR v.term <> $1) AND v.id > $2 ORDER BY v.id LIMIT $3",
	        3, vals, NULL, NULL, "rewrap select", e);
	if (r == NULL)
		return e->code;
	size_t count = (size_t)PQntuples(r);
	*rows = calloc(count + 1, sizeof(**rows));
	int rc = *rows ? 0 : cof_err_set(e, COF_EINTERNAL, "out of memory");
	for (size_t i = 0; rc == 0 && i < count; i++) {
		struct store_sealed *x = &(*rows)[i];
		int row = (int)i;
		x->row_id = col_i64(r, row, 0);
		x->project_id = col_i64(r, row, 1);
		x->secret_id = col_i64(r, row, 2);
		col_str(r, row, 3, x->secret, sizeof(x->secret));
		x->visibility = (int)col_i64(r, row, 4);
		x->environment_id = col_i64(r, row, 5);
		x->version = (int)col_i64(r, row, 6);
		x->valid_from = col_i64(r, row, 7);
		x->term = (int32_t)col_i64(r, row, 8);
		rc = store__col_bytea(r, row, 9, &x->sealed, &x->sealed_len, e);
		*n = i + 1;
	}
	PQclear(r);
	return rc;
}

int store_value_reseal(struct store *s, int64_t row_id, int32_t term, const uint8_t *sealed,
                       size_t len, struct cof_err *e)
{
	char id[24], t[24];
	const char *vals[3] = {I64(id, row_id), I64(t, term), (const char *)sealed};
	int lens[3] = {0, 0, (int)len};
	int fmts[3] = {0, 0, 1};
	return store__run(s, "UPDATE secret_values SET term = $2, sealed = $3 WHERE id = $1", 3,
	                  vals, lens, fmts, "value reseal", e);
}

int store_term_counts(struct store *s, int32_t *terms, int64_t *counts, int cap, int *n,
                      struct cof_err *e)
{
	PGresult *r =
	        store__exec(s,
	                    "SELECT k.term, count(v.id) FROM keyring k LEFT JOIN secret_values v "
	                    "ON v.term = k.term GROUP BY k.term ORDER BY k.term",
	                    0, NULL, NULL, NULL, "term counts", e);
	if (r == NULL)
		return e->code;
	*n = 0;
	for (int i = 0; i < PQntuples(r) && *n < cap; i++, (*n)++) {
		terms[i] = (int32_t)col_i64(r, i, 0);
		counts[i] = col_i64(r, i, 1);
	}
	PQclear(r);
	return 0;
}
