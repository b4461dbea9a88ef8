/*
 * store_internal.h - helpers shared by the store's own files; nothing outside store*.c includes it.
 */
#ifndef COFFER_STORE_INTERNAL_H
#define COFFER_STORE_INTERNAL_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "store.h"

/* Runs a parameterised statement; NULL (and e filled) unless it succeeded. */
PGresult *store__exec(struct store *s, const char *sql, int n, const char *const *vals,
                      const int *lens, const int *fmts, const char *what, struct cof_err *e);
/* Runs a statement whose rows are not needed; 0 or a COF_E* code. */
int store__run(struct store *s, const char *sql, int n, const char *const *vals, const int *lens,
               const int *fmts, const char *what, struct cof_err *e);
/* Maps a failed result (or connection) to a COF_E* code, detail for the log. */
int store__fail(struct store *s, PGresult *res, const char *what, struct cof_err *e);
/* Drops the connection (it is made again on next use, unless it LISTENs). */
void store__drop(struct store *s);
/* A transaction of the store's own (store_tx, migrations, audit batches). */
int store__begin(struct store *s, enum store_tx_mode mode, struct cof_err *e);
int store__commit(struct store *s, struct cof_err *e);
/* Rolls back an open transaction; harmless when none is open. */
void store__rollback(struct store *s);
/* Records the revision the open transaction writes, for its audit row. */
void store__revision_hint(struct store *s, int64_t revision);
/* Records what the open transaction changes (store_last_changes). */
void store__changed_project(struct store *s, int64_t project_id, int64_t revision);
void store__changed_token(struct store *s, const char *id);
/* Inserts one audit row in the open transaction. */
int store__audit_row(struct store *s, const struct audit_row *row, struct cof_err *e);
/* A malloc'd copy of a bytea column (text format). */
int store__col_bytea(PGresult *r, int row, int col, uint8_t **out, size_t *len, struct cof_err *e);

/* A growing array literal, "{...}": put "{" first and "}" last; ok turns false on OOM. */
struct store_text {
	char *p;
	size_t len, cap;
	bool ok;
};
void store__text_put(struct store_text *t, const char *s, size_t n);
/* Elements: a number, a blob as hex (decode(x, 'hex')), a quoted string. */
void store__text_i64(struct store_text *t, int64_t v);
void store__text_hex(struct store_text *t, const uint8_t *b, size_t n);
void store__text_str(struct store_text *t, const char *s);
/* A field of a COPY row in text format, escaped, then a tab (or the row's line end when last). */
void store__copy_str(struct store_text *t, const char *s, bool last);
void store__copy_i64(struct store_text *t, int64_t v, bool last);
/* COPY's binary format: the header, each row's field count, then its fields (integers of 2, 4
 * or 8 bytes for int2, int4, int8; NULL; bytea), and the trailer. */
void store__bin_start(struct store_text *t);
void store__bin_row(struct store_text *t, int fields);
void store__bin_int(struct store_text *t, int64_t v, int bytes);
void store__bin_null(struct store_text *t);
void store__bin_bytes(struct store_text *t, const uint8_t *p, size_t n);
void store__bin_end(struct store_text *t);
/* Runs `COPY ... FROM STDIN` (sql) with data[0..len) as one statement outside any transaction,
 * bounded like any statement: its success is a commit (it counts as one for readiness), and an
 * answer that never comes leaves the outcome unknown (COF_EUNKNOWN), as for COMMIT. */
int store__copy_in(struct store *s, const char *sql, const char *data, size_t len, const char *what,
                   struct cof_err *e) __attribute__((warn_unused_result));

/* As store__exec, parameters in text and results in binary format (no hex for bytea, no
 * decimal for integers): for statements that return many rows. The col_ helpers read both. */
PGresult *store__exec_binary(struct store *s, const char *sql, int n, const char *const *vals,
                             const char *what, struct cof_err *e);

/* An integer column (int2, int4 or int8; NULL: 0) in either format. */
static inline int64_t col_i64(PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	const char *v = PQgetvalue(r, row, col);
	if (PQfformat(r, col) == 0)
		return strtoll(v, NULL, 10);
	int len = PQgetlength(r, row, col);
	uint64_t x = (v[0] & 0x80) ? UINT64_MAX : 0; /* sign-extended, big-endian */
	for (int i = 0; i < len; i++)
		x = (x << 8) | (uint8_t)v[i];
	return (int64_t)x;
}

/* A text column (NULL: empty) in either format: libpq ends both with a NUL. */
static inline void col_str(PGresult *r, int row, int col, char *out, size_t cap)
{
	snprintf(out, cap, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* A decimal parameter in buf (a char array). */
#define I64(buf, v) (snprintf((buf), sizeof(buf), "%" PRId64, (int64_t)(v)), (buf))

#endif
