/*
 * secrets_internal.h - a secret's writes as steps of a transaction that already holds the
 * project's lock and has chosen the revision it writes (rev): the single calls (secrets.c) run
 * one step each, a change set (changeset.c) many under one revision. A step checks what its
 * single call checks and writes its rows at rev; the project's revision and the quota are its
 * caller's. Inside the domain only.
 */
#ifndef COFFER_SECRETS_INTERNAL_H
#define COFFER_SECRETS_INTERNAL_H

#include <stdint.h>

#include "secrets.h"
#include "store.h"

int secret_create_step(struct session *ss, struct store *s, int64_t pid,
                       const struct secret_spec *c, int64_t rev, struct store_secret *row,
                       struct cof_err *e) __attribute__((warn_unused_result));
int secret_update_step(struct session *ss, struct store *s, int64_t pid,
                       const struct secret_change *c, int64_t rev, struct store_secret *row,
                       struct cof_err *e) __attribute__((warn_unused_result));
int secret_delete_step(struct store *s, int64_t pid, const char *project, const char *name,
                       int64_t expected, int64_t rev, struct cof_err *e)
        __attribute__((warn_unused_result));

#endif
