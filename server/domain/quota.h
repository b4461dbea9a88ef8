/*
 * quota.h - how much one project may hold, and how much one request may ask for.
 *
 * They bound the memory of every call: a resolve returns at most one value per secret, and all
 * of a project's current values (defaults and every override) together are at most
 * LIMIT_PROJECT_VALUE_BYTES, so no resolve or merge can outgrow a replica. A write that would
 * cross a limit is refused with COF_EEXHAUSTED (RESOURCE_EXHAUSTED) and changes nothing.
 * docs/api.md ("Limits") lists them.
 */
#ifndef COFFER_QUOTA_H
#define COFFER_QUOTA_H

#include <stdint.h>

#include "coffer_limits.h"
#include "errors.h"

struct store;

/* At the end of a write transaction on s: COF_EEXHAUSTED (naming the limit) when the project now
 * holds more than its limits allow, so that the transaction rolls back. */
int quota_check(struct store *s, int64_t project_id, const char *project, struct cof_err *e)
        __attribute__((warn_unused_result));

#endif
