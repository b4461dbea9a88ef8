/*
 * audit.h - the audit writer: rows for reveals, resolves, token operations and refused calls.
 *
 * Callers queue a row and wait until it is committed; a writer thread with its own database
 * connection commits everything queued so far in one transaction (group commit), so many resolves
 * share one commit and none is answered before its row is stored. If rows cannot be written the
 * callers get COF_EUNAVAIL and answer UNAVAILABLE: fail closed. Writes are audited in their own
 * transaction instead (store_audit_set).
 */
#ifndef COFFER_AUDIT_H
#define COFFER_AUDIT_H

#include <stdint.h>

#include "errors.h"
#include "store.h"

struct audit;

int audit_start(const char *database_url, struct audit **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Stops the writer after committing what is queued. NULL-safe. */
void audit_stop(struct audit *a);
/* Queues ev and waits (up to timeout_ms) until it is committed: 0, or COF_EUNAVAIL. */
int audit_record(struct audit *a, const struct store_audit *ev, int64_t timeout_ms)
        __attribute__((warn_unused_result));
/* Rows waiting to be written. */
int audit_backlog(struct audit *a);

#endif
