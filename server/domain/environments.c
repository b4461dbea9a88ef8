/*
 * environments.c - environments, overrides and merge: transactions over the store and the
 * keyring, with the pure diff in merge_plan.c.
 */
#include "environments.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "merge_plan.h"
#include "quota.h"
#include "environments_internal.h"
#include "session_internal.h"
#include "store.h"
#include "value.h"

static void environment_of(const struct store_environment *row, struct environment *out)
{
	snprintf(out->name, sizeof(out->name), "%s", row->name);
	snprintf(out->description, sizeof(out->description), "%s", row->description);
	out->revision = row->revision;
	out->create_us = row->create_us;
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

struct env_create_tx {
	const char *project;          /* the project's name */
	const char *name;             /* the name it is about */
	const char *description;      /* the description to store */
	struct store_environment row; /* the row as written */
};

static int env_create_body(struct store *s, void *arg, struct cof_err *e)
{
	struct env_create_tx *t = arg;
	int64_t pid = 0, rev = 0;
	struct store_environment existing;
	int rc = store_project_lock(s, t->project, &pid, &rev, e);
	if (rc)
		return rc;
	rc = store_environment_find(s, pid, t->name, &existing, e);
	if (rc == 0)
		return cof_err_set(e, COF_EEXIST,
		                   "environment \"%s\" already exists in project \"%s\"", t->name,
		                   t->project);
	if (rc != COF_ENOTFOUND)
		return rc;
	rev++;
	if ((rc = store_environment_insert(s, pid, t->name, t->description, rev, &t->row, e)) ||
	    (rc = quota_check(s, pid, t->project, e)))
		return rc;
	return store_project_set_revision(s, pid, rev, e);
}

int environments_create(struct session *ss, const char *project, const char *name,
                        const char *description, struct audit_row *audit, struct environment *out,
                        struct cof_err *e)
{
	struct env_create_tx t = {.project = project, .name = name, .description = description};
	int rc = session_tx(ss, STORE_TX_WRITE, env_create_body, &t, audit, e);
	if (rc == 0)
		environment_of(&t.row, out);
	return rc;
}

int environments_get(struct session *ss, const char *project, const char *name,
                     struct environment *out, struct cof_err *e)
{
	struct store_environment row;
	int rc = store_environment_get(ss->store, project, name, &row, e);
	if (rc == 0)
		environment_of(&row, out);
	return rc;
}

int environments_list(struct session *ss, const char *project, const char *after, int limit,
                      struct environment *out, int *n, struct cof_err *e)
{
	*n = 0;
	struct store_environment *rows = calloc((size_t)limit + 1, sizeof(*rows));
	if (rows == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	int rc = store_environment_list(ss->store, project, after, limit, rows, n, e);
	for (int i = 0; rc == 0 && i < *n; i++)
		environment_of(&rows[i], &out[i]);
	free(rows);
	return rc;
}

struct env_delete_tx {
	const char *project;       /* the project's name */
	const char *name;          /* the name it is about */
	int64_t expected_revision; /* the revision to compare with (0: none) */
};

static int env_delete_body(struct store *s, void *arg, struct cof_err *e)
{
	struct env_delete_tx *t = arg;
	int64_t pid = 0, rev = 0;
	struct store_environment env;
	int rc = lock_env(s, t->project, t->name, &pid, &rev, &env, e);
	if (rc)
		return rc;
	if (t->expected_revision != 0 && t->expected_revision != env.revision)
		return cof_err_set(e, COF_ECONFLICT,
		                   "environment \"%s\" is at revision %" PRId64 ", not %" PRId64,
		                   t->name, env.revision, t->expected_revision);
	rev++;
	if ((rc = store_environment_delete(s, env.id, rev, e)))
		return rc;
	return store_project_set_revision(s, pid, rev, e);
}

int environments_delete(struct session *ss, const char *project, const char *name,
                        int64_t expected_revision, struct audit_row *audit, struct cof_err *e)
{
	if (strcmp(name, "main") == 0)
		return cof_err_set(e, COF_EPRECOND, "environment \"main\" cannot be deleted");
	struct env_delete_tx t = {project, name, expected_revision};
	return session_tx(ss, STORE_TX_WRITE, env_delete_body, &t, audit, e);
}

/* ---- overrides ---- */

/* In a transaction with project pid locked: environment, secret, and the override's current
 * revision (0 when there is none), checked against the caller's expectation. */
static int find_override(struct store *s, int64_t pid, const struct override_change *c,
                         struct store_environment *env, struct store_secret *sec, int64_t *current,
                         struct cof_err *e)
{
	int rc = store_environment_find(s, pid, c->environment, env, e);
	if (rc) {
		if (rc == COF_ENOTFOUND)
			cof_err_set(e, rc, "environment \"%s\" not found in project \"%s\"",
			            c->environment, c->project);
		return rc;
	}
	if ((rc = store_secret_find(s, pid, c->secret, sec, e))) {
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

struct override_tx {
	struct session *ss;              /* the session it runs in */
	const struct override_change *c; /* the change asked for */
	int64_t revision;                /* out: the revision written */
};

int override_set_step(struct session *ss, struct store *s, int64_t pid,
                      const struct override_change *c, int64_t rev, bool *existed,
                      struct cof_err *e)
{
	int64_t current = 0;
	struct store_environment env;
	struct store_secret sec;
	int rc = find_override(s, pid, c, &env, &sec, &current, e);
	if (rc || (rc = value_put(ss, s, pid, sec.id, env.id, c->version, rev, c->value, 0, e)))
		return rc;
	if (existed)
		*existed = current != 0;
	return store_environment_set_revision(s, env.id, rev, e);
}

static int override_set_body(struct store *s, void *arg, struct cof_err *e)
{
	struct override_tx *t = arg;
	const struct override_change *c = t->c;
	int64_t pid = 0, rev = 0;
	int rc = store_project_lock(s, c->project, &pid, &rev, e);
	if (rc || (rc = override_set_step(t->ss, s, pid, c, ++rev, NULL, e)) ||
	    (rc = quota_check(s, pid, c->project, e)))
		return rc;
	t->revision = rev;
	return store_project_set_revision(s, pid, rev, e);
}

int overrides_set(struct session *ss, const struct override_change *c, struct audit_row *audit,
                  struct override *out, struct cof_err *e)
{
	struct override_tx t = {.ss = ss, .c = c};
	int rc = session_tx(ss, STORE_TX_WRITE, override_set_body, &t, audit, e);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	snprintf(out->secret, sizeof(out->secret), "%s", c->secret);
	out->version = c->version;
	out->revision = t.revision;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	out->update_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	return 0;
}

int override_delete_step(struct store *s, int64_t pid, const struct override_change *c, int64_t rev,
                         struct cof_err *e)
{
	int64_t current = 0;
	struct store_environment env;
	struct store_secret sec;
	int rc = find_override(s, pid, c, &env, &sec, &current, e);
	if (rc)
		return rc;
	if (current == 0)
		return cof_err_set(e, COF_ENOTFOUND,
		                   "secret \"%s\" has no %s override in environment \"%s\"",
		                   c->secret, version_name(c->version), c->environment);
	if ((rc = store_value_end(s, sec.id, env.id, c->version, rev, e)))
		return rc;
	return store_environment_set_revision(s, env.id, rev, e);
}

static int override_delete_body(struct store *s, void *arg, struct cof_err *e)
{
	struct override_tx *t = arg;
	const struct override_change *c = t->c;
	int64_t pid = 0, rev = 0;
	int rc = store_project_lock(s, c->project, &pid, &rev, e);
	if (rc || (rc = override_delete_step(s, pid, c, ++rev, e)))
		return rc;
	t->revision = rev;
	return store_project_set_revision(s, pid, rev, e);
}

int overrides_delete(struct session *ss, const struct override_change *c, struct audit_row *audit,
                     struct cof_err *e)
{
	struct override_tx t = {.ss = ss, .c = c};
	return session_tx(ss, STORE_TX_WRITE, override_delete_body, &t, audit, e);
}

struct list_tx {
	const char *project, *environment; /* what it is about */
	int version;                       /* in: 0 both */
	const char *after_secret;          /* the page continues after this secret */
	int after_version;                 /* and after this version of it */
	int limit;                         /* rows to read at most */
	struct store_override *rows;       /* out: room for limit */
	int n;                             /* rows read */
};

static int override_list_body(struct store *s, void *arg, struct cof_err *e)
{
	struct list_tx *t = arg;
	return store_override_list(s, t->project, t->environment, t->version, t->after_secret,
	                           t->after_version, t->limit, t->rows, &t->n, e);
}

int overrides_list(struct session *ss, const char *project, const char *environment, int version,
                   const char *after_secret, int after_version, int limit, struct override *out,
                   int *n, struct cof_err *e)
{
	*n = 0;
	struct list_tx t = {project,
	                    environment,
	                    version,
	                    after_secret,
	                    after_version,
	                    limit,
	                    calloc((size_t)limit + 1, sizeof(struct store_override)),
	                    0};
	if (t.rows == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	/* The environment and its overrides from one snapshot. */
	int rc = session_tx(ss, STORE_TX_SNAPSHOT, override_list_body, &t, NULL, e);
	for (int i = 0; rc == 0 && i < t.n; i++) {
		snprintf(out[i].secret, sizeof(out[i].secret), "%s", t.rows[i].secret);
		out[i].version = t.rows[i].version;
		out[i].revision = t.rows[i].revision;
		out[i].update_us = t.rows[i].update_us;
	}
	if (rc == 0)
		*n = t.n;
	free(t.rows);
	return rc;
}

/* ---- merge ---- */

/* Fills entries[] from rows, opening the values it needs: every source value (it is written to
 * the target), and target values of masked secrets only (a restricted target value is compared by
 * its origin, never read). Values are owned by the entries; free with free_entries. */
static int open_entries(struct session *ss, int64_t pid, const struct store_sealed *rows, size_t n,
                        bool target, struct merge_entry *entries, struct cof_err *e)
{
	for (size_t i = 0; i < n; i++) {
		const struct store_sealed *r = &rows[i];
		bool restricted = r->visibility == VISIBILITY_RESTRICTED;
		entries[i] = (struct merge_entry){.secret = r->secret,
		                                  .version = r->version,
		                                  .ref = i,
		                                  .restricted = restricted,
		                                  .row_id = r->row_id,
		                                  .origin_id = r->origin_id};
		if (target && restricted)
			continue;
		char *plain = NULL;
		size_t len = 0;
		int rc = value_open(ss, pid, r, &plain, &len, e);
		entries[i].value = plain;
		entries[i].len = len;
		if (rc)
			return rc;
	}
	return 0;
}

static void free_entries(struct merge_entry *entries, size_t n)
{
	for (size_t i = 0; entries && i < n; i++)
		if (entries[i].value)
			value_free((char *)entries[i].value, entries[i].len);
	free(entries);
}

struct merge_tx {
	struct session *ss;              /* the session it runs in */
	const struct merge_request *req; /* the request */
	struct merge_result *out;        /* what the transaction found */
};

/* The rows of both sides, opened, and the plan between them. */
struct merge_sides {
	struct store_sealed *src_rows, *dst_rows; /* current overrides of each side */
	size_t n_src, n_dst;                      /* entries in each */
	struct merge_entry *src, *dst;            /* the same, opened */
	struct merge_change *plan;                /* what changes */
};

static void sides_free(struct merge_sides *m)
{
	free_entries(m->src, m->src ? m->n_src : 0);
	free_entries(m->dst, m->dst ? m->n_dst : 0);
	free(m->plan);
	store_sealed_free(m->src_rows, m->n_src);
	store_sealed_free(m->dst_rows, m->n_dst);
}

/* Applies the plan at revision rev: every new value sealed here, then two statements for all of
 * them (the project stays locked for as short a time as the plan allows). */
static int merge_write(struct merge_tx *t, struct store *s, struct merge_sides *m, size_t n,
                       int64_t pid, int64_t dst_id, int64_t src_id, int64_t rev, struct cof_err *e)
{
	struct store_value_write *w = calloc(n + 1, sizeof(*w));
	if (w == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct merge_change *ch = &m->plan[i];
		w[i].version = ch->version;
		if (ch->kind == CHANGE_REMOVED) {
			w[i].secret_id = m->dst_rows[ch->to->ref].secret_id;
			continue;
		}
		w[i].secret_id = m->src_rows[ch->from->ref].secret_id;
		w[i].origin_id = merge_origin(ch->from);
		uint8_t *blob = NULL;
		rc = value_seal(t->ss, pid, w[i].secret_id, dst_id, ch->version, rev,
		                ch->from->value, &blob, &w[i].sealed_len, &w[i].term, e);
		w[i].sealed = blob;
	}
	if (rc == 0)
		rc = store_values_replace(s, dst_id, rev, w, n, e);
	for (size_t i = 0; i < n; i++)
		free((void *)w[i].sealed);
	free(w);
	if (rc || (rc = quota_check(s, pid, t->req->project, e)) ||
	    (n && (rc = store_environment_set_revision(s, dst_id, rev, e))) ||
	    (t->req->delete_source && (rc = store_environment_delete(s, src_id, rev, e))))
		return rc;
	return store_project_set_revision(s, pid, rev, e);
}

static int merge_body(struct store *s, void *arg, struct cof_err *e)
{
	struct merge_tx *t = arg;
	const struct merge_request *req = t->req;
	struct merge_result *out = t->out;
	int64_t pid = 0, rev = 0;
	struct store_environment src, dst;
	struct merge_sides m = {0};
	environments_merge_clear(out);
	int rc = lock_env(s, req->project, req->source, &pid, &rev, &src, e);
	if (rc)
		return rc;
	if ((rc = store_environment_find(s, pid, req->target, &dst, e))) {
		if (rc == COF_ENOTFOUND)
			cof_err_set(e, rc, "environment \"%s\" not found in project \"%s\"",
			            req->target, req->project);
		return rc;
	}
	if (req->expected_source_revision && req->expected_source_revision != src.revision)
		return cof_err_set(e, COF_ECONFLICT,
		                   "environment \"%s\" is at revision %" PRId64 ", not %" PRId64,
		                   req->source, src.revision, req->expected_source_revision);
	if (req->expected_target_revision && req->expected_target_revision != dst.revision)
		return cof_err_set(e, COF_ECONFLICT,
		                   "environment \"%s\" is at revision %" PRId64 ", not %" PRId64,
		                   req->target, dst.revision, req->expected_target_revision);
	if ((rc = store_override_rows(s, src.id, &m.src_rows, &m.n_src, e)) ||
	    (rc = store_override_rows(s, dst.id, &m.dst_rows, &m.n_dst, e)))
		goto out;
	m.src = calloc(m.n_src + 1, sizeof(*m.src));
	m.dst = calloc(m.n_dst + 1, sizeof(*m.dst));
	m.plan = calloc(m.n_src + m.n_dst + 1, sizeof(*m.plan));
	if (m.src == NULL || m.dst == NULL || m.plan == NULL) {
		rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		goto out;
	}
	if ((rc = open_entries(t->ss, pid, m.src_rows, m.n_src, false, m.src, e)) ||
	    (rc = open_entries(t->ss, pid, m.dst_rows, m.n_dst, true, m.dst, e)))
		goto out;
	size_t n = merge_plan(m.src, m.n_src, m.dst, m.n_dst, m.plan, &out->live_overrides_applied);
	out->changes = calloc(n + 1, sizeof(*out->changes));
	if (out->changes == NULL) {
		rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(out->changes[i].secret, sizeof(out->changes[i].secret), "%s",
		         m.plan[i].secret);
		out->changes[i].version = m.plan[i].version;
		out->changes[i].kind = m.plan[i].kind;
	}
	out->n_changes = n;
	out->revision = rev;
	if (req->dry_run || (n == 0 && !req->delete_source)) {
		out->applied = !req->dry_run;
		rc = STORE_TX_DISCARD; /* nothing to write */
		goto out;
	}
	if ((rc = merge_write(t, s, &m, n, pid, dst.id, src.id, rev + 1, e)) == 0) {
		out->revision = rev + 1;
		out->applied = true;
	}
out:
	sides_free(&m);
	return rc;
}

int environments_merge(struct session *ss, const struct merge_request *req, struct audit_row *audit,
                       struct merge_result *out, struct cof_err *e)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(req->source, req->target) == 0)
		return cof_err_set(e, COF_EINVAL, "source and target are the same environment");
	if (req->delete_source && strcmp(req->source, "main") == 0)
		return cof_err_set(e, COF_EPRECOND, "environment \"main\" cannot be deleted");
	struct merge_tx t = {ss, req, out};
	int rc = session_tx(ss, STORE_TX_WRITE, merge_body, &t, audit, e);
	if (rc)
		environments_merge_clear(out);
	return rc;
}

void environments_merge_clear(struct merge_result *r)
{
	if (r == NULL)
		return;
	free(r->changes);
	memset(r, 0, sizeof(*r));
}
