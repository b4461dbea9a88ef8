/* catalog.c - secret write transactions and reveal (see catalog.h). */
#include "catalog.h"
#include "catalog_internal.h"
#include "keys.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int catalog__seal_and_put(struct store *s, struct crypt_keyring *kr, int64_t project_id,
                          int64_t secret_id, int64_t env_id, int version, int64_t rev,
                          const char *value, struct cof_err *e)
{
	struct crypt_value_id id = {project_id, secret_id, env_id, version, rev};
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	int rc = crypt_seal(kr, &id, (const uint8_t *)value, strlen(value), &blob, &blob_len, e);
	if (rc)
		return rc;
	rc = store_value_put(s, secret_id, env_id, version, rev, crypt_blob_term(blob, blob_len),
	                     blob, blob_len, e);
	free(blob);
	return rc;
}

/* In an open transaction: locks the project and finds the current secret, checking the caller's
 * expected revision. Fills *pid, *rev (the project's current revision) and *cur. */
static int lock_secret(struct store *s, const char *project, const char *name, int64_t expected,
                       int64_t *pid, int64_t *rev, struct store_secret *cur, struct cof_err *e)
{
	int rc = store_project_lock(s, project, pid, rev, e);
	if (rc)
		return rc;
	if ((rc = store_secret_find(s, *pid, name, cur, e))) {
		if (rc == COF_ENOTFOUND)
			cof_err_set(e, rc, "secret \"%s\" not found in project \"%s\"", name,
			            project);
		return rc;
	}
	if (expected != 0 && expected != cur->revision)
		return cof_err_set(e, COF_ECONFLICT,
		                   "secret \"%s\" is at revision %" PRId64 ", not %" PRId64, name,
		                   cur->revision, expected);
	return 0;
}

static int create_once(struct store *s, struct crypt_keyring *kr, const char *project,
                       const char *name, const char *value, int visibility, const char *description,
                       struct store_secret *out, struct cof_err *e)
{
	int64_t pid = 0, rev = 0;
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	if ((rc = store_project_lock(s, project, &pid, &rev, e)))
		goto out_rollback;
	struct store_secret existing;
	rc = store_secret_find(s, pid, name, &existing, e);
	if (rc == 0) {
		rc = cof_err_set(e, COF_EEXIST, "secret \"%s\" already exists in project \"%s\"",
		                 name, project);
		goto out_rollback;
	}
	if (rc != COF_ENOTFOUND)
		goto out_rollback;
	rev++;
	if ((rc = store_secret_insert(s, pid, name, visibility, description, rev, out, e)) ||
	    (rc = catalog__seal_and_put(s, kr, pid, out->id, 0, 0, rev, value, e)) ||
	    (rc = store_project_set_revision(s, pid, rev, e)))
		goto out_rollback;
	return store_commit(s, e);
out_rollback:
	store_rollback(s);
	return rc;
}

int catalog_secret_create(struct store *s, struct crypt_keyring *kr, const char *project,
                          const char *name, const char *value, int visibility,
                          const char *description, struct store_secret *out, struct cof_err *e)
{
	int rc = COF_ERETRY;
	for (int i = 0; i < MAX_ATTEMPTS && rc == COF_ERETRY; i++)
		rc = create_once(s, kr, project, name, value, visibility, description, out, e);
	return rc;
}

static int update_once(struct store *s, struct crypt_keyring *kr,
                       const struct catalog_secret_change *c, struct store_secret *out,
                       struct cof_err *e)
{
	int64_t pid = 0, rev = 0;
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	struct store_secret cur;
	if ((rc = lock_secret(s, c->project, c->name, c->expected_revision, &pid, &rev, &cur, e)))
		goto out_rollback;
	int vis = c->visibility ? c->visibility : cur.visibility;
	if (cur.visibility == VIS_RESTRICTED && vis == VIS_MASKED) {
		rc = cof_err_set(e, COF_EPRECOND,
		                 "secret \"%s\" is restricted and cannot become masked again",
		                 c->name);
		goto out_rollback;
	}
	rev++;
	const char *desc = c->description ? c->description : cur.description;
	if ((rc = store_secret_update(s, cur.id, vis, desc, rev, out, e)))
		goto out_rollback;
	if (c->value && (rc = catalog__seal_and_put(s, kr, pid, cur.id, 0, 0, rev, c->value, e)))
		goto out_rollback;
	if ((rc = store_project_set_revision(s, pid, rev, e)))
		goto out_rollback;
	return store_commit(s, e);
out_rollback:
	store_rollback(s);
	return rc;
}

int catalog_secret_update(struct store *s, struct crypt_keyring *kr,
                          const struct catalog_secret_change *c, struct store_secret *out,
                          struct cof_err *e)
{
	int rc = COF_ERETRY;
	for (int i = 0; i < MAX_ATTEMPTS && rc == COF_ERETRY; i++)
		rc = update_once(s, kr, c, out, e);
	return rc;
}

static int delete_once(struct store *s, const char *project, const char *name,
                       int64_t expected_revision, struct cof_err *e)
{
	int64_t pid = 0, rev = 0;
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	struct store_secret cur;
	if ((rc = lock_secret(s, project, name, expected_revision, &pid, &rev, &cur, e)))
		goto out_rollback;
	rev++;
	if ((rc = store_secret_delete(s, cur.id, rev, e)) ||
	    (rc = store_project_set_revision(s, pid, rev, e)))
		goto out_rollback;
	return store_commit(s, e);
out_rollback:
	store_rollback(s);
	return rc;
}

int catalog_secret_delete(struct store *s, const char *project, const char *name,
                          int64_t expected_revision, struct cof_err *e)
{
	int rc = COF_ERETRY;
	for (int i = 0; i < MAX_ATTEMPTS && rc == COF_ERETRY; i++)
		rc = delete_once(s, project, name, expected_revision, e);
	return rc;
}

int catalog_secret_reveal(struct store *s, struct crypt_keyring *kr, const char *project,
                          const char *name, const char *environment, int version,
                          struct catalog_revealed *out, struct cof_err *e)
{
	memset(out, 0, sizeof(*out));
	struct store_secret sec;
	struct store_value val = {0};
	int rc = store_begin_snapshot(s, e);
	if (rc)
		return rc;
	if ((rc = store_secret_get(s, project, name, &sec, e)))
		goto out;
	if (sec.visibility == VIS_RESTRICTED) {
		rc = cof_err_set(e, COF_EPRECOND,
		                 "secret \"%s\" is restricted and cannot be revealed", name);
		goto out;
	}
	int64_t env_id = 0;
	out->source = SOURCE_DEFAULT;
	if (environment && *environment) {
		struct store_environment env;
		rc = store_environment_find(s, sec.project_id, environment, &env, e);
		env_id = env.id;
		if (rc) {
			if (rc == COF_ENOTFOUND)
				cof_err_set(e, rc, "environment \"%s\" not found in project \"%s\"",
				            environment, project);
			goto out;
		}
		rc = store_value_current(s, sec.id, env_id, version, &val, e);
		if (rc == 0)
			out->source = SOURCE_OVERRIDE;
		else if (rc != COF_ENOTFOUND)
			goto out;
	}
	if (out->source == SOURCE_DEFAULT) {
		env_id = 0;
		version = 0;
		if ((rc = store_value_current(s, sec.id, 0, 0, &val, e))) {
			if (rc == COF_ENOTFOUND)
				rc = cof_err_set(e, COF_EINTERNAL,
				                 "secret \"%s\" has no stored value", name);
			goto out;
		}
	}
	struct crypt_value_id id = {sec.project_id, sec.id, env_id, version, val.valid_from};
	if ((rc = keys_ensure_term(s, kr, crypt_blob_term(val.sealed, val.sealed_len), e)))
		goto out;
	rc = crypt_open(kr, &id, val.sealed, val.sealed_len, &out->value, &out->len, e);
	if (rc) {
		cof_err_detail(e, "value of secret %s (project %s) failed to open: %s", name,
		               project, e->msg);
		cof_err_set(e, COF_ETAMPER, "the stored value of secret \"%s\" failed to decrypt",
		            name);
		goto out;
	}
	out->revision = val.valid_from;
out:
	store_value_clear(&val);
	store_rollback(s);
	if (rc)
		catalog_revealed_clear(out);
	return rc;
}

void catalog_revealed_clear(struct catalog_revealed *r)
{
	if (r == NULL)
		return;
	crypt_free_plain(r->value, r->len + 1);
	memset(r, 0, sizeof(*r));
}
