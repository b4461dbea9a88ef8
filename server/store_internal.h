/*
 * store_internal.h - helpers shared by the store's own files; nothing outside store*.c includes it.
 */
#ifndef COFFER_STORE_INTERNAL_H
#define COFFER_STORE_INTERNAL_H

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
PGconn *store__conn(struct store *s);

#endif
