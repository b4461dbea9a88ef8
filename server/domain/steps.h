/*
 * steps.h - the writes of one secret or one override as steps of a transaction that already
 * holds the project's lock and has chosen the revision it writes (rev): the single calls run one
 * step each (secrets.c, environments.c), a change set runs many under one revision
 * (changeset.c). A step checks what its single call checks, writes its rows at rev (an
 * override also moves its environment to rev) and leaves the project's revision and the quota to
 * its caller. Inside the domain only.
 */
#ifndef COFFER_STEPS_H
#define COFFER_STEPS_H

#include <stdbool.h>
#include <stdint.h>

#include "environments.h"
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
/* *existed (may be NULL): whether the override replaced one. */
int override_set_step(struct session *ss, struct store *s, int64_t pid,
                      const struct override_change *c, int64_t rev, bool *existed,
                      struct cof_err *e) __attribute__((warn_unused_result));
int override_delete_step(struct store *s, int64_t pid, const struct override_change *c,
                         int64_t rev, struct cof_err *e) __attribute__((warn_unused_result));

#endif
