/* audit_log.c - reading the audit log back (see audit_log.h). */
#include "audit_log.h"

#include "store.h"

int audit_log_list(struct session *ss, const char *project, bool all, int64_t since_us,
                   int64_t after_id, int limit, struct audit_row *out, int *n, struct cof_err *e)
{
	return store_audit_list(ss->store, project, all, since_us, after_id, limit, out, n, e);
}
