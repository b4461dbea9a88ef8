/* value.c - sealing and opening value rows (see value.h). */
#include "value.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"
#include "keys.h"
#include "store.h"

int value_seal(struct session *ss, int64_t project_id, int64_t secret_id, int64_t env_id,
               int version, int64_t rev, const char *value, uint8_t **blob, size_t *len,
               int32_t *term, struct cof_err *e)
{
	struct crypt_value_id id = {project_id, secret_id, env_id, version, rev};
	int rc = crypt_seal(ss->kr, &id, (const uint8_t *)value, strlen(value), blob, len, e);
	if (rc == 0)
		*term = crypt_blob_term(*blob, *len);
	return rc;
}

int value_put(struct session *ss, struct store *s, int64_t project_id, int64_t secret_id,
              int64_t env_id, int version, int64_t rev, const char *value, int64_t origin_id,
              struct cof_err *e)
{
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	int32_t term = 0;
	int rc = value_seal(ss, project_id, secret_id, env_id, version, rev, value, &blob,
	                    &blob_len, &term, e);
	if (rc)
		return rc;
	rc = store_value_put(s, secret_id, env_id, version, rev, term, blob, blob_len, origin_id,
	                     e);
	free(blob);
	return rc;
}

int value_open_at(struct session *ss, const struct value_at *at, char **plain, size_t *len,
                  struct cof_err *e)
{
	int rc = keys_ensure_term(ss, crypt_blob_term(at->sealed, at->sealed_len), e);
	if (rc)
		return rc;
	struct crypt_value_id id = {at->project_id, at->secret_id, at->environment_id, at->version,
	                            at->valid_from};
	rc = crypt_open_with(ss->kr, &id, at->sealed, at->sealed_len, at->alloc, at->alloc_arg,
	                     plain, len, e);
	if (rc) {
		cof_err_detail(e,
		               "value of secret %s (environment id %" PRId64
		               ", version %d, revision %" PRId64 ") failed to open: %s",
		               at->name, at->environment_id, at->version, at->valid_from, e->msg);
		cof_err_set(e, COF_ETAMPER, "the stored value of secret \"%s\" failed to decrypt",
		            at->name);
	}
	return rc;
}

int value_open(struct session *ss, int64_t project_id, const struct store_sealed *row, char **plain,
               size_t *len, struct cof_err *e)
{
	struct value_at at = {.project_id = project_id,
	                      .secret_id = row->secret_id,
	                      .environment_id = row->environment_id,
	                      .version = row->version,
	                      .valid_from = row->valid_from,
	                      .name = row->secret,
	                      .sealed = row->sealed,
	                      .sealed_len = row->sealed_len};
	return value_open_at(ss, &at, plain, len, e);
}

void value_free(char *plain, size_t len)
{
	crypt_free_plain(plain, len + 1);
}
