/*
 * environments_internal.h - an override's writes as steps of a transaction that holds the
 * project's lock at a revision its caller chose (see secrets_internal.h): the single calls
 * (environments.c) and change sets (changeset.c). A step also moves the override's environment
 * to rev. Inside the domain only.
 */
#ifndef COFFER_ENVIRONMENTS_INTERNAL_H
#define COFFER_ENVIRONMENTS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "environments.h"
#include "store.h"

/* *existed (may be NULL): whether the override replaced one. */
int override_set_step(struct session *ss, struct store *s, int64_t pid,
                      const struct override_change *c, int64_t rev, bool *existed,
                      struct cof_err *e) __attribute__((warn_unused_result));
int override_delete_step(struct store *s, int64_t pid, const struct override_change *c, int64_t rev,
                         struct cof_err *e) __attribute__((warn_unused_result));

#endif
