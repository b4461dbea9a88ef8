/* secrets.c - secret transactions and reveal (see secrets.h). */
#include "secrets.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"
#include "secrets_internal.h"
#include "session_internal.h"
#include "store.h"
#include "value.h"

static void secret_of(const struct store_secret *row, struct secret *out)
{
	snprintf(out->name, sizeof(out->name), "%s", row->name);
	out->visibility = row->visibility;
	snprintf(out->description, sizeof(out->description), "%s", row->description);
	out->revision = row->revision;
	out->create_us = row->create_us;
	out->update_us = row->update_us;
}

struct create_tx {
	struct session *ss;             /* the session it runs in */
	const struct secret_spec *spec; /* what to create */
	struct store_secret row;        /* the row as written */
};

int secret_create_step(struct session *ss, struct store *s, int64_t pid,
                       const struct secret_spec *c, int64_t rev, struct store_secret *row,
                       struct cof_err *e)
{
	struct store_secret existing;
	int rc = store_secret_find(s, pid, c->name, &existing, e);
	if (rc == 0)
		return cof_err_set(e, COF_EEXIST, "secret \"%s\" already exists in project \"%s\"",
		                   c->name, c->project);
	if (rc != COF_ENOTFOUND)
		return rc;
	if ((rc = store_secret_insert(s, pid, c->name, c->visibility, c->description, rev, row, e)))
		return rc;
	return value_put(ss, s, pid, row->id, 0, VERSION_DEFAULT, rev, c->value, 0, e);
}

static int create_body(struct store *s, void *arg, struct cof_err *e)
{
	struct create_tx *t = arg;
	const struct secret_spec *c = t->spec;
	int64_t pid = 0, rev = 0;
	int rc = store_project_lock(s, c->project, &pid, &rev, e);
	if (rc || (rc = secret_create_step(t->ss, s, pid, c, ++rev, &t->row, e)) ||
	    (rc = quota_check(s, pid, c->project, e)))
		return rc;
	return store_project_set_revision(s, pid, rev, e);
}

int secrets_create(struct session *ss, const struct secret_spec *spec, struct audit_row *audit,
                   struct secret *out, struct cof_err *e)
{
	struct create_tx t = {.ss = ss, .spec = spec};
	int rc = session_tx(ss, STORE_TX_WRITE, create_body, &t, audit, e);
	if (rc == 0)
		secret_of(&t.row, out);
	return rc;
}

struct update_tx {
	struct session *ss;            /* the session it runs in */
	const struct secret_change *c; /* the change asked for */
	struct store_secret row;       /* the row as written */
};

/* The current secret `name` of project pid, checked against an expected revision (0: any). */
static int find_secret(struct store *s, int64_t pid, const char *project, const char *name,
                       int64_t expected, struct store_secret *cur, struct cof_err *e)
{
	int rc = store_secret_find(s, pid, name, cur, e);
	if (rc) {
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

int secret_update_step(struct session *ss, struct store *s, int64_t pid,
                       const struct secret_change *c, int64_t rev, struct store_secret *row,
                       struct cof_err *e)
{
	struct store_secret cur;
	int rc = find_secret(s, pid, c->project, c->name, c->expected_revision, &cur, e);
	if (rc)
		return rc;
	int vis = c->visibility ? c->visibility : cur.visibility;
	if (cur.visibility == VISIBILITY_RESTRICTED && vis == VISIBILITY_MASKED)
		return cof_err_set(e, COF_EPRECOND,
		                   "secret \"%s\" is restricted and cannot become masked again",
		                   c->name);
	const char *desc = c->description ? c->description : cur.description;
	if ((rc = store_secret_update(s, cur.id, vis, desc, rev, row, e)))
		return rc;
	return c->value ? value_put(ss, s, pid, cur.id, 0, VERSION_DEFAULT, rev, c->value, 0, e)
	                : 0;
}

static int update_body(struct store *s, void *arg, struct cof_err *e)
{
	struct update_tx *t = arg;
	const struct secret_change *c = t->c;
	int64_t pid = 0, rev = 0;
	int rc = store_project_lock(s, c->project, &pid, &rev, e);
	if (rc || (rc = secret_update_step(t->ss, s, pid, c, ++rev, &t->row, e)) ||
	    (c->value && (rc = quota_check(s, pid, c->project, e))))
		return rc;
	return store_project_set_revision(s, pid, rev, e);
}

int secrets_update(struct session *ss, const struct secret_change *c, struct audit_row *audit,
                   struct secret *out, struct cof_err *e)
{
	struct update_tx t = {.ss = ss, .c = c};
	int rc = session_tx(ss, STORE_TX_WRITE, update_body, &t, audit, e);
	if (rc == 0)
		secret_of(&t.row, out);
	return rc;
}

struct delete_tx {
	const char *project;       /* the project's name */
	const char *name;          /* the name it is about */
	int64_t expected_revision; /* the revision to compare with (0: none) */
};

int secret_delete_step(struct store *s, int64_t pid, const char *project, const char *name,
                       int64_t expected, int64_t rev, struct cof_err *e)
{
	struct store_secret cur;
	int rc = find_secret(s, pid, project, name, expected, &cur, e);
	return rc ? rc : store_secret_delete(s, cur.id, rev, e);
}

static int delete_body(struct store *s, void *arg, struct cof_err *e)
{
	struct delete_tx *t = arg;
	int64_t pid = 0, rev = 0;
	int rc = store_project_lock(s, t->project, &pid, &rev, e);
	if (rc ||
	    (rc = secret_delete_step(s, pid, t->project, t->name, t->expected_revision, ++rev, e)))
		return rc;
	return store_project_set_revision(s, pid, rev, e);
}

int secrets_delete(struct session *ss, const char *project, const char *name,
                   int64_t expected_revision, struct audit_row *audit, struct cof_err *e)
{
	struct delete_tx t = {project, name, expected_revision};
	return session_tx(ss, STORE_TX_WRITE, delete_body, &t, audit, e);
}

int secrets_get(struct session *ss, const char *project, const char *name, struct secret *out,
                struct cof_err *e)
{
	struct store_secret row;
	int rc = store_secret_get(ss->store, project, name, &row, e);
	if (rc == 0)
		secret_of(&row, out);
	return rc;
}

int secrets_list(struct session *ss, const char *project, const char *after, int limit,
                 struct secret *out, int *n, struct cof_err *e)
{
	*n = 0;
	struct store_secret *rows = calloc((size_t)limit + 1, sizeof(*rows));
	if (rows == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	int rc = store_secret_list(ss->store, project, after, limit, rows, n, e);
	for (int i = 0; rc == 0 && i < *n; i++)
		secret_of(&rows[i], &out[i]);
	free(rows);
	return rc;
}

struct reveal_tx {
	struct session *ss;      /* the session it runs in */
	const char *project;     /* the project's name */
	const char *name;        /* the name it is about */
	const char *environment; /* in: NULL or "": the project default */
	int version;             /* draft or live */
	struct revealed *out;    /* what the transaction found */
};

static int reveal_body(struct store *s, void *arg, struct cof_err *e)
{
	struct reveal_tx *t = arg;
	struct revealed *out = t->out;
	struct store_secret sec;
	struct store_value val = {0};
	secrets_revealed_clear(out);
	int rc = store_secret_get(s, t->project, t->name, &sec, e);
	if (rc)
		return rc;
	if (sec.visibility == VISIBILITY_RESTRICTED)
		return cof_err_set(e, COF_EPRECOND,
		                   "secret \"%s\" is restricted and cannot be revealed", t->name);
	struct store_sealed row = {.secret_id = sec.id};
	snprintf(row.secret, sizeof(row.secret), "%s", sec.name);
	out->source = SOURCE_DEFAULT;
	if (t->environment && *t->environment) {
		struct store_environment env;
		rc = store_environment_find(s, sec.project_id, t->environment, &env, e);
		if (rc) {
			if (rc == COF_ENOTFOUND)
				cof_err_set(e, rc, "environment \"%s\" not found in project \"%s\"",
				            t->environment, t->project);
			return rc;
		}
		rc = store_value_current(s, sec.id, env.id, t->version, &val, e);
		if (rc == 0) {
			out->source = SOURCE_OVERRIDE;
			row.environment_id = env.id;
			row.version = t->version;
		} else if (rc != COF_ENOTFOUND) {
			return rc;
		}
	}
	if (out->source == SOURCE_DEFAULT &&
	    (rc = store_value_current(s, sec.id, 0, VERSION_DEFAULT, &val, e))) {
		if (rc == COF_ENOTFOUND)
			rc = cof_err_set(e, COF_EINTERNAL, "secret \"%s\" has no stored value",
			                 t->name);
		return rc;
	}
	row.valid_from = val.valid_from;
	row.sealed = val.sealed;
	row.sealed_len = val.sealed_len;
	rc = value_open(t->ss, sec.project_id, &row, &out->value, &out->len, e);
	out->revision = val.valid_from;
	store_value_clear(&val);
	return rc;
}

int secrets_reveal(struct session *ss, const char *project, const char *name,
                   const char *environment, int version, struct revealed *out, struct cof_err *e)
{
	memset(out, 0, sizeof(*out));
	struct reveal_tx t = {ss, project, name, environment, version, out};
	int rc = session_tx(ss, STORE_TX_SNAPSHOT, reveal_body, &t, NULL, e);
	if (rc)
		secrets_revealed_clear(out);
	return rc;
}

void secrets_revealed_clear(struct revealed *r)
{
	if (r == NULL)
		return;
	if (r->value)
		value_free(r->value, r->len);
	memset(r, 0, sizeof(*r));
}
