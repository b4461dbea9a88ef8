/* quota.c - the per-project limits, checked inside write transactions (see quota.h). */
#include "quota.h"

#include <inttypes.h>

#include "crypt.h"
#include "store.h"

int quota_check(struct store *s, int64_t project_id, const char *project, struct cof_err *e)
{
	struct store_usage u;
	int rc = store_project_usage(s, project_id, &u, e);
	if (rc)
		return rc;
	int64_t value_bytes = u.sealed_bytes - u.values * (CRYPT_HEADER_BYTES + CRYPT_TAG_BYTES);
	if (u.secrets > LIMIT_SECRETS_PER_PROJECT)
		return cof_err_set(e, COF_EEXHAUSTED, "project \"%s\" may hold at most %d secrets",
		                   project, LIMIT_SECRETS_PER_PROJECT);
	if (u.environments > LIMIT_ENVIRONMENTS_PER_PROJECT)
		return cof_err_set(e, COF_EEXHAUSTED,
		                   "project \"%s\" may hold at most %d environments", project,
		                   LIMIT_ENVIRONMENTS_PER_PROJECT);
	if (value_bytes > LIMIT_PROJECT_VALUE_BYTES)
		return cof_err_set(e, COF_EEXHAUSTED,
		                   "project \"%s\" may hold at most %d MiB of values (defaults and "
		                   "overrides together); this write would bring it to %" PRId64
		                   " bytes",
		                   project, LIMIT_PROJECT_VALUE_BYTES >> 20, value_bytes);
	return 0;
}
