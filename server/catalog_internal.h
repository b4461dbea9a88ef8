/*
 * catalog_internal.h - what catalog.c and catalog_envs.c share; nothing else includes it.
 */
#ifndef COFFER_CATALOG_INTERNAL_H
#define COFFER_CATALOG_INTERNAL_H

#include "catalog.h"

/* Attempts of a write transaction that failed with COF_ERETRY. */
#define MAX_ATTEMPTS 3

/* Seals value for (project, secret, environment, version) at revision `rev` and stores it as the
 * current row, ending the previous one. */
int catalog__seal_and_put(struct store *s, struct crypt_keyring *kr, int64_t project_id,
                          int64_t secret_id, int64_t env_id, int version, int64_t rev,
                          const char *value, struct cof_err *e);

#endif
