/*
 * catalog_envs.c - environments, overrides, merge and resolve: transactions over the store and
 * crypt, with the pure decisions in merge.c and resolve.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog_internal.h"
#include "keys.h"
#include "resolve.h"

static const char *version_name(int version)
{
	return version == 2 ? "live" : "draft";
}

/* In a transaction: the project lock and the current environment `name`. */
static int lock_env(struct store *s, const char *project, const char *name, int64_t *pid,
                    int64_t *rev, struct store_environment *env, struct cof_err *e)
{
	int rc = store_project_lock(s, project, pid, rev, e);
	if (rc)
		return rc;
	rc = store_environment_find(s, *pid, name, env, e);
	if (rc == COF_ENOTFOUND)
		cof_err_set(e, rc, "environment \"%s\" not found in project \"%s\"", name, project);
	return rc;
}

/* ---- environments ---- */

static int env_create_once(struct store *s, const char *project, const char *name,
                           const char *description, struct store_environment *out,
                           struct cof_err *e)
{
	int64_t pid = 0, rev = 0;
	struct store_environment existing;
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	if ((rc = store_project_lock(s, project, &pid, &rev, e)))
		goto out_rollback;
	rc = store_environment_find(s, pid, name, &existing, e);
	if (rc == 0)
		rc = cof_err_set(e, COF_EEXIST,
		                 "environment \"%s\" already exists in project \"%s\"", name,
		                 project);
	if (rc != COF_ENOTFOUND)
		goto out_rollback;
	rev++;
	if ((rc = store_environment_insert(s, pid, name, description, rev, out, e)) ||
	    (rc = store_project_set_revision(s, pid, rev, e)))
		goto out_rollback;
	return store_commit(s, e);
out_rollback:
	store_rollback(s);
	return rc;
}

int catalog_env_create(struct store *s, const char *project, const char *name,
                       const char *description, struct store_environment *out, struct cof_err *e)
{
	int rc = COF_ERETRY;
	for (int i = 0; i < MAX_ATTEMPTS && rc == COF_ERETRY; i++)
		rc = env_create_once(s, project, name, description, out, e);
	return rc;
}

static int env_delete_once(struct store *s, const char *project, const char *name,
                           int64_t expected_revision, struct cof_err *e)
{
	int64_t pid = 0, rev = 0;
	struct store_environment env;
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	if ((rc = lock_env(s, project, name, &pid, &rev, &env, e)))
		goto out_rollback;
	if (expected_revision != 0 && expected_revision != env.revision) {
		rc = cof_err_set(e, COF_ECONFLICT,
		                 "environment \"%s\" is at revision %" PRId64 ", not %" PRId64,
		                 name, env.revision, expected_revision);
		goto out_rollback;
	}
	rev++;
	if ((rc = store_environment_delete(s, env.id, rev, e)) ||
	    (rc = store_project_set_revision(s, pid, rev, e)))
		goto out_rollback;
	return store_commit(s, e);
out_rollback:
	store_rollback(s);
	return rc;
}

int catalog_env_delete(struct store *s, const char *project, const char *name,
                       int64_t expected_revision, struct cof_err *e)
{
	if (strcmp(name, "main") == 0)
		return cof_err_set(e, COF_EPRECOND, "environment \"main\" cannot be deleted");
	int rc = COF_ERETRY;
	for (int i = 0; i < MAX_ATTEMPTS && rc == COF_ERETRY; i++)
		rc = env_delete_once(s, project, name, expected_revision, e);
	return rc;
}

/* ---- overrides ---- */

/* In a transaction: project lock, environment, secret, and the override's current revision (0 when
 * there is none), checked against the caller's expectation. */
static int lock_override(struct store *s, const struct catalog_override_change *c, int64_t *pid,
                         int64_t *rev, struct store_environment *env, struct store_secret *sec,
                         int64_t *current, struct cof_err *e)
{
	int rc = lock_env(s, c->project, c->environment, pid, rev, env, e);
	if (rc)
		return rc;
	if ((rc = store_secret_find(s, *pid, c->secret, sec, e))) {
		if (rc == COF_ENOTFOUND)
			cof_err_set(e, rc, "secret \"%s\" not found in project \"%s\"", c->secret,
			            c->project);
		return rc;
	}
	struct store_value cur;
	rc = store_value_current(s, sec->id, env->id, c->version, &cur, e);
	*current = rc == 0 ? cur.valid_from : 0;
	store_value_clear(&cur);
	if (rc != 0 && rc != COF_ENOTFOUND)
		return rc;
	if (c->expected_revision != 0 && c->expected_revision != *current)
		return cof_err_set(
		        e, COF_ECONFLICT,
		        "the %s override of secret \"%s\" in environment \"%s\" is at revision "
		        "%" PRId64 ", not %" PRId64,
		        version_name(c->version), c->secret, c->environment, *current,
		        c->expected_revision);
	return 0;
}

static int override_set_once(struct store *s, struct crypt_keyring *kr,
                             const struct catalog_override_change *c, struct store_override *out,
                             struct cof_err *e)
{
	int64_t pid = 0, rev = 0, current = 0;
	struct store_environment env;
	struct store_secret sec;
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	if ((rc = lock_override(s, c, &pid, &rev, &env, &sec, &current, e)))
		goto out_rollback;
	rev++;
	if ((rc = catalog__seal_and_put(s, kr, pid, sec.id, env.id, c->version, rev, c->value,
	                                e)) ||
	    (rc = store_environment_set_revision(s, env.id, rev, e)) ||
	    (rc = store_project_set_revision(s, pid, rev, e)))
		goto out_rollback;
	if ((rc = store_commit(s, e)))
		return rc;
	memset(out, 0, sizeof(*out));
	snprintf(out->secret, sizeof(out->secret), "%s", c->secret);
	out->version = c->version;
	out->revision = rev;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	out->update_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	return 0;
out_rollback:
	store_rollback(s);
	return rc;
}

int catalog_override_set(struct store *s, struct crypt_keyring *kr,
                         const struct catalog_override_change *c, struct store_override *out,
                         struct cof_err *e)
{
	int rc = COF_ERETRY;
	for (int i = 0; i < MAX_ATTEMPTS && rc == COF_ERETRY; i++)
		rc = override_set_once(s, kr, c, out, e);
	return rc;
}

static int override_delete_once(struct store *s, const struct catalog_override_change *c,
                                struct cof_err *e)
{
	int64_t pid = 0, rev = 0, current = 0;
	struct store_environment env;
	struct store_secret sec;
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	if ((rc = lock_override(s, c, &pid, &rev, &env, &sec, &current, e)))
		goto out_rollback;
	if (current == 0) {
		rc = cof_err_set(e, COF_ENOTFOUND,
		                 "secret \"%s\" has no %s override in environment \"%s\"",
		                 c->secret, version_name(c->version), c->environment);
		goto out_rollback;
	}
	rev++;
	if ((rc = store_value_end(s, sec.id, env.id, c->version, rev, e)) ||
	    (rc = store_environment_set_revision(s, env.id, rev, e)) ||
	    (rc = store_project_set_revision(s, pid, rev, e)))
		goto out_rollback;
	return store_commit(s, e);
out_rollback:
	store_rollback(s);
	return rc;
}

int catalog_override_delete(struct store *s, const struct catalog_override_change *c,
                            struct cof_err *e)
{
	int rc = COF_ERETRY;
	for (int i = 0; i < MAX_ATTEMPTS && rc == COF_ERETRY; i++)
		rc = override_delete_once(s, c, e);
	return rc;
}

/* ---- opening rows ---- */

/* Opens a sealed row of project pid into *plain / *len; a failure names the secret only. */
static int open_row(struct store *s, struct crypt_keyring *kr, int64_t pid,
                    const struct store_sealed *row, char **plain, size_t *len, struct cof_err *e)
{
	int tr = keys_ensure_term(s, kr, crypt_blob_term(row->sealed, row->sealed_len), e);
	if (tr)
		return tr;
	struct crypt_value_id id = {pid, row->secret_id, row->environment_id, row->version,
	                            row->valid_from};
	int rc = crypt_open(kr, &id, row->sealed, row->sealed_len, plain, len, e);
	if (rc) {
		cof_err_detail(e,
		               "value of secret %s (environment id %" PRId64
		               ", version %d, revision %" PRId64 ") failed to open: %s",
		               row->secret, row->environment_id, row->version, row->valid_from,
		               e->msg);
		cof_err_set(e, COF_ETAMPER, "the stored value of secret \"%s\" failed to decrypt",
		            row->secret);
	}
	return rc;
}

/* Opens every row into entries[] (values owned by the entries; free with free_entries). */
static int open_entries(struct store *s, struct crypt_keyring *kr, int64_t pid,
                        const struct store_sealed *rows, size_t n, struct merge_entry *entries,
                        struct cof_err *e)
{
	for (size_t i = 0; i < n; i++) {
		char *plain = NULL;
		size_t len = 0;
		int rc = open_row(s, kr, pid, &rows[i], &plain, &len, e);
		entries[i] = (struct merge_entry){rows[i].secret, rows[i].version, plain, len, i};
		if (rc)
			return rc;
	}
	return 0;
}

static void free_entries(struct merge_entry *entries, size_t n)
{
	for (size_t i = 0; entries && i < n; i++)
		crypt_free_plain((char *)entries[i].value, entries[i].len + 1);
	free(entries);
}

/* ---- merge ---- */

static int merge_once(struct store *s, struct crypt_keyring *kr,
                      const struct catalog_merge_request *req, struct catalog_merge_result *out,
                      struct cof_err *e)
{
	int64_t pid = 0, rev = 0;
	struct store_environment src, dst;
	struct store_sealed *src_rows = NULL, *dst_rows = NULL;
	size_t n_src = 0, n_dst = 0;
	struct merge_entry *src_e = NULL, *dst_e = NULL;
	struct merge_change *plan = NULL;
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	if ((rc = lock_env(s, req->project, req->source, &pid, &rev, &src, e)))
		goto out;
	if ((rc = store_environment_find(s, pid, req->target, &dst, e))) {
		if (rc == COF_ENOTFOUND)
			cof_err_set(e, rc, "environment \"%s\" not found in project \"%s\"",
			            req->target, req->project);
		goto out;
	}
	if (req->expected_source_revision && req->expected_source_revision != src.revision) {
		rc = cof_err_set(e, COF_ECONFLICT,
		                 "environment \"%s\" is at revision %" PRId64 ", not %" PRId64,
		                 req->source, src.revision, req->expected_source_revision);
		goto out;
	}
	if (req->expected_target_revision && req->expected_target_revision != dst.revision) {
		rc = cof_err_set(e, COF_ECONFLICT,
		                 "environment \"%s\" is at revision %" PRId64 ", not %" PRId64,
		                 req->target, dst.revision, req->expected_target_revision);
		goto out;
	}
	if ((rc = store_override_rows(s, src.id, &src_rows, &n_src, e)) ||
	    (rc = store_override_rows(s, dst.id, &dst_rows, &n_dst, e)))
		goto out;
	src_e = calloc(n_src + 1, sizeof(*src_e));
	dst_e = calloc(n_dst + 1, sizeof(*dst_e));
	plan = calloc(n_src + n_dst + 1, sizeof(*plan));
	if (src_e == NULL || dst_e == NULL || plan == NULL) {
		rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		goto out;
	}
	if ((rc = open_entries(s, kr, pid, src_rows, n_src, src_e, e)) ||
	    (rc = open_entries(s, kr, pid, dst_rows, n_dst, dst_e, e)))
		goto out;
	size_t n = merge_plan(src_e, n_src, dst_e, n_dst, plan, &out->live_overrides_applied);
	out->changes = calloc(n + 1, sizeof(*out->changes));
	if (out->changes == NULL) {
		rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(out->changes[i].secret, sizeof(out->changes[i].secret), "%s",
		         plan[i].secret);
		out->changes[i].version = plan[i].version;
		out->changes[i].kind = plan[i].kind;
	}
	out->n_changes = n;
	out->revision = rev;
	if (req->dry_run || (n == 0 && !req->delete_source)) {
		out->applied = !req->dry_run;
		goto out; /* nothing to write */
	}
	rev++;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct merge_change *ch = &plan[i];
		if (ch->kind == MERGE_REMOVED)
			rc = store_value_end(s, dst_rows[ch->to->ref].secret_id, dst.id,
			                     ch->version, rev, e);
		else
			rc = catalog__seal_and_put(s, kr, pid, src_rows[ch->from->ref].secret_id,
			                           dst.id, ch->version, rev, ch->from->value, e);
	}
	if (rc || (n && (rc = store_environment_set_revision(s, dst.id, rev, e))) ||
	    (req->delete_source && (rc = store_environment_delete(s, src.id, rev, e))) ||
	    (rc = store_project_set_revision(s, pid, rev, e)))
		goto out;
	if ((rc = store_commit(s, e)) == 0) {
		out->revision = rev;
		out->applied = true;
	}
out:
	store_rollback(s);
	free_entries(src_e, src_e ? n_src : 0);
	free_entries(dst_e, dst_e ? n_dst : 0);
	free(plan);
	store_sealed_free(src_rows, n_src);
	store_sealed_free(dst_rows, n_dst);
	if (rc)
		catalog_merge_result_clear(out);
	return rc;
}

int catalog_merge(struct store *s, struct crypt_keyring *kr,
                  const struct catalog_merge_request *req, struct catalog_merge_result *out,
                  struct cof_err *e)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(req->source, req->target) == 0)
		return cof_err_set(e, COF_EINVAL, "source and target are the same environment");
	if (req->delete_source && strcmp(req->source, "main") == 0)
		return cof_err_set(e, COF_EPRECOND, "environment \"main\" cannot be deleted");
	int rc = COF_ERETRY;
	for (int i = 0; i < MAX_ATTEMPTS && rc == COF_ERETRY; i++)
		rc = merge_once(s, kr, req, out, e);
	return rc;
}

void catalog_merge_result_clear(struct catalog_merge_result *r)
{
	if (r == NULL)
		return;
	free(r->changes);
	memset(r, 0, sizeof(*r));
}

/* ---- resolve ---- */

static int resolve_once(struct store *s, struct crypt_keyring *kr,
                        const struct catalog_resolve_request *req, struct catalog_resolved *out,
                        bool *again, struct cof_err *e)
{
	struct store_project p;
	int rc = store_begin_snapshot(s, e);
	*again = false;
	if (rc)
		return rc;
	if ((rc = store_project_get(s, req->project, &p, e)))
		goto out;
	if (req->min_revision > p.revision) {
		*again = true;
		rc = cof_err_set(e, COF_EUNAVAIL,
		                 "project \"%s\" has not reached revision %" PRId64
		                 " (it is at %" PRId64 ")",
		                 req->project, req->min_revision, p.revision);
		goto out;
	}
	if (req->at_revision > p.revision) {
		rc = cof_err_set(e, COF_ERANGE,
		                 "revision %" PRId64 " is beyond the current revision %" PRId64
		                 " of project \"%s\"",
		                 req->at_revision, p.revision, req->project);
		goto out;
	}
	int64_t at = req->at_revision ? req->at_revision : p.revision;
	out->revision = at;
	if (req->at_revision == 0 && req->known_revision == p.revision) {
		out->not_modified = true;
		goto out;
	}
	int64_t env_id = 0;
	if ((rc = store_environment_at(s, p.id, req->environment, at, &env_id, e))) {
		if (rc == COF_ENOTFOUND)
			cof_err_set(e, rc, "environment \"%s\" not found in project \"%s\"%s",
			            req->environment, req->project,
			            req->at_revision ? " at that revision" : "");
		goto out;
	}
	if ((rc = store_resolve_rows(s, p.id, env_id, req->version, at, &out->rows, &out->n_rows,
	                             e)))
		goto out;
	const char **all = calloc(out->n_rows + 1, sizeof(*all));
	size_t *take = calloc(out->n_rows + 1, sizeof(*take));
	out->missing = calloc(req->n_names + 1, sizeof(*out->missing));
	out->secrets = calloc(out->n_rows + 1, sizeof(*out->secrets));
	if (all == NULL || take == NULL || out->missing == NULL || out->secrets == NULL) {
		free(all);
		free(take);
		rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < out->n_rows; i++)
		all[i] = out->rows[i].secret;
	size_t n_take = 0;
	resolve_select(all, out->n_rows, req->names, req->n_names, take, &n_take, out->missing,
	               &out->n_missing);
	free(all);
	for (size_t k = 0; k < n_take && rc == 0; k++) {
		const struct store_sealed *row = &out->rows[take[k]];
		struct catalog_resolved_secret *sec = &out->secrets[out->n_secrets];
		rc = open_row(s, kr, p.id, row, &sec->value, &sec->len, e);
		if (rc)
			break;
		sec->name = row->secret;
		sec->visibility = row->visibility;
		sec->source = row->environment_id ? SOURCE_OVERRIDE : SOURCE_DEFAULT;
		sec->revision = row->valid_from;
		out->n_secrets++;
	}
	free(take);
out:
	store_rollback(s);
	return rc;
}

int catalog_resolve(struct store *s, struct crypt_keyring *kr,
                    const struct catalog_resolve_request *req, struct catalog_resolved *out,
                    struct cof_err *e)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		bool again = false;
		memset(out, 0, sizeof(*out));
		int rc = resolve_once(s, kr, req, out, &again, e);
		if (rc)
			catalog_resolved_clear(out);
		if (!again)
			return rc;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t waited = (int64_t)(now.tv_sec - start.tv_sec) * 1000 +
		                 (now.tv_nsec - start.tv_nsec) / 1000000;
		if (waited + 50 > req->wait_ms)
			return rc;
		nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
	}
}

void catalog_resolved_clear(struct catalog_resolved *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; r->secrets && i < r->n_secrets; i++)
		crypt_free_plain(r->secrets[i].value, r->secrets[i].len + 1);
	free(r->secrets);
	free(r->missing);
	store_sealed_free(r->rows, r->n_rows);
	memset(r, 0, sizeof(*r));
}
