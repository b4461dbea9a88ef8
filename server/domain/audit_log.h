/*
 * audit_log.h - reading the audit log back (Access/ListAuditLog). Rows are written by the audit
 * writer (obs/audit.h) through the domain's sink (domain.h) and with each write (store_tx).
 */
#ifndef COFFER_AUDIT_LOG_H
#define COFFER_AUDIT_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "errors.h"
#include "session.h"

/* Audit rows of `project` ("" and all: every row) at or after since_us, by id after after_id. */
int audit_log_list(struct session *ss, const char *project, bool all, int64_t since_us,
                   int64_t after_id, int limit, struct audit_row *out, int *n, struct cof_err *e)
        __attribute__((warn_unused_result));

#endif
