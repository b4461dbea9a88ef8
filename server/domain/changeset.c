/* changeset.c - change sets: many writes, one transaction, one revision (see changeset.h). */
#include "changeset.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"
#include "environments_internal.h"
#include "secrets_internal.h"
#include "session_internal.h"
#include "store.h"

const char *change_secret(const struct change *c)
{
	switch (c->op) {
	case OP_CREATE_SECRET:
		return c->create.name;
	case OP_UPDATE_SECRET:
	case OP_DELETE_SECRET:
		return c->update.name;
	default:
		return c->ov.secret;
	}
}

/* What a change touches: a secret (env NULL) or one override. Two changes of a set may not touch
 * the same thing: their order would be the only thing that decides, in one revision. */
static bool same_target(const struct change *a, const struct change *b)
{
	bool a_ov = a->op == OP_SET_OVERRIDE || a->op == OP_DELETE_OVERRIDE;
	bool b_ov = b->op == OP_SET_OVERRIDE || b->op == OP_DELETE_OVERRIDE;
	if (a_ov != b_ov || strcmp(change_secret(a), change_secret(b)) != 0)
		return false;
	return !a_ov || (a->ov.version == b->ov.version &&
	                 strcmp(a->ov.environment, b->ov.environment) == 0);
}

struct apply_tx {
	struct session *ss;            /* the session it runs in */
	const char *project;           /* the project's name */
	int64_t expected;              /* the project revision to compare with (0: none) */
	bool dry_run;                  /* check and report everything, write nothing */
	const struct change *changes;  /* the changes, in order */
	size_t n;                      /* how many changes */
	const struct audit_row *who;   /* the call's audit row, copied for each change */
	struct change_result *results; /* what each change did (room for n) */
	int64_t revision;              /* the revision written */
	size_t failed;                 /* the index of the change that failed (n: none) */
};

/* Runs change i at rev; fills its result. */
static int apply_one(struct apply_tx *t, struct store *s, int64_t pid, int64_t rev, size_t i,
                     struct cof_err *e)
{
	const struct change *c = &t->changes[i];
	struct change_result *r = &t->results[i];
	memset(r, 0, sizeof(*r));
	snprintf(r->secret, sizeof(r->secret), "%s", change_secret(c));
	struct store_secret row;
	bool existed = false;
	int rc;
	switch (c->op) {
	case OP_CREATE_SECRET:
		r->kind = CHANGE_ADDED;
		return secret_create_step(t->ss, s, pid, &c->create, rev, &row, e);
	case OP_UPDATE_SECRET:
		r->kind = CHANGE_CHANGED;
		return secret_update_step(t->ss, s, pid, &c->update, rev, &row, e);
	case OP_DELETE_SECRET:
		r->kind = CHANGE_REMOVED;
		return secret_delete_step(s, pid, t->project, c->update.name, 0, rev, e);
	case OP_SET_OVERRIDE:
		snprintf(r->environment, sizeof(r->environment), "%s", c->ov.environment);
		r->version = c->ov.version;
		rc = override_set_step(t->ss, s, pid, &c->ov, rev, &existed, e);
		r->kind = existed ? CHANGE_CHANGED : CHANGE_ADDED;
		return rc;
	case OP_DELETE_OVERRIDE:
		snprintf(r->environment, sizeof(r->environment), "%s", c->ov.environment);
		r->version = c->ov.version;
		r->kind = CHANGE_REMOVED;
		return override_delete_step(s, pid, &c->ov, rev, e);
	default:
		return cof_err_set(e, COF_EINVAL, "unknown change");
	}
}

/* One audit row per change, as the caller's row with what the change touched. */
static int audit_changes(struct apply_tx *t, struct store *s, int64_t rev, struct cof_err *e)
{
	struct audit_row *rows = calloc(t->n ? t->n : 1, sizeof(*rows));
	if (rows == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	for (size_t i = 0; i < t->n; i++) {
		rows[i] = *t->who;
		snprintf(rows[i].secret, sizeof(rows[i].secret), "%s", t->results[i].secret);
		snprintf(rows[i].environment, sizeof(rows[i].environment), "%s",
		         t->results[i].environment);
		rows[i].version = t->results[i].version;
		rows[i].revision = rev;
		rows[i].code = 0;
		rows[i].count = 1;
	}
	int rc = store_audit_insert(s, rows, t->n, e);
	free(rows);
	return rc;
}

static int apply_body(struct store *s, void *arg, struct cof_err *e)
{
	struct apply_tx *t = arg;
	int64_t pid = 0, rev = 0;
	t->failed = t->n;
	int rc = store_project_lock(s, t->project, &pid, &rev, e);
	if (rc)
		return rc;
	if (t->expected != 0 && t->expected != rev)
		return cof_err_set(e, COF_ECONFLICT,
		                   "project \"%s\" is at revision %" PRId64 ", not %" PRId64,
		                   t->project, rev, t->expected);
	rev++;
	for (size_t i = 0; i < t->n; i++) {
		if ((rc = apply_one(t, s, pid, rev, i, e))) {
			t->failed = i;
			return rc;
		}
	}
	t->revision = rev;
	if ((rc = quota_check(s, pid, t->project, e)))
		return rc;
	if (t->dry_run)
		return STORE_TX_DISCARD; /* checked and reported: nothing is written */
	if ((rc = audit_changes(t, s, rev, e)))
		return rc;
	return store_project_set_revision(s, pid, rev, e);
}

int changeset_apply(struct session *ss, const char *project, int64_t expected_revision,
                    bool dry_run, const struct change *changes, size_t n, struct audit_row *audit,
                    struct change_result *results, int64_t *revision, size_t *failed,
                    struct cof_err *e)
{
	*failed = n;
	*revision = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (same_target(&changes[i], &changes[j])) {
				*failed = i;
				bool ov = changes[i].op == OP_SET_OVERRIDE ||
				          changes[i].op == OP_DELETE_OVERRIDE;
				cof_err_set(e, COF_EINVAL, "change %zu already changes the same %s",
				            j, ov ? "override" : "secret");
				changeset_blame(e, i, change_secret(&changes[i]));
				return e->code;
			}
	audit->committed = false;
	struct apply_tx t = {ss, project, expected_revision, dry_run, changes,
	                     n,  audit,   results,           0,       n};
	int rc = session_tx(ss, STORE_TX_WRITE, apply_body, &t, NULL, e);
	*failed = t.failed;
	if (rc == 0) {
		*revision = t.revision;
		audit->committed = !dry_run; /* its per-change rows were committed with the set */
		return 0;
	}
	if (t.failed < n)
		changeset_blame(e, t.failed, change_secret(&changes[t.failed]));
	return rc;
}

void changeset_blame(struct cof_err *e, size_t i, const char *secret)
{
	char msg[sizeof(e->msg)];
	snprintf(msg, sizeof(msg), "%s", e->msg);
	cof_err_set(e, e->code, "change %zu (secret %s): %s", i, secret ? secret : "", msg);
}
