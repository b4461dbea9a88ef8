/*
 * projects.h - projects: create (with environment `main`), read, list, delete.
 *
 * Writes take the caller's audit row (NULL: none) into their transaction (store_tx).
 */
#ifndef COFFER_PROJECTS_H
#define COFFER_PROJECTS_H

#include <stdint.h>

#include "errors.h"
#include "model.h"
#include "session.h"

/* Creates the project and its environment `main`, both at revision 1. */
int projects_create(struct session *ss, const char *name, const char *description,
                    struct audit_row *audit, struct project *out, struct cof_err *e)
        __attribute__((warn_unused_result));
int projects_get(struct session *ss, const char *name, struct project *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Up to `limit` projects named after `after`, by name; *n is how many. */
int projects_list(struct session *ss, const char *after, int limit, struct project *out, int *n,
                  struct cof_err *e) __attribute__((warn_unused_result));
/* Removes the project and everything in it; expected_revision 0: do not check. */
int projects_delete(struct session *ss, const char *name, int64_t expected_revision,
                    struct audit_row *audit, struct cof_err *e) __attribute__((warn_unused_result));

#endif
