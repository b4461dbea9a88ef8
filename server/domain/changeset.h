/*
 * changeset.h - several changes to one project's secrets and overrides in one transaction and one
 * revision (Secrets/ApplyChanges): all of them or none, each checked as its single call would be,
 * one audit row per change committed with them.
 */
#ifndef COFFER_CHANGESET_H
#define COFFER_CHANGESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "environments.h"
#include "errors.h"
#include "model.h"
#include "secrets.h"
#include "session.h"

enum change_op {
	OP_CREATE_SECRET = 1,
	OP_UPDATE_SECRET,
	OP_DELETE_SECRET,
	OP_SET_OVERRIDE,
	OP_DELETE_OVERRIDE,
};

/* One change; the member of its op is used, with project set to the change set's. */
struct change {
	enum change_op op;           /* which member below is used */
	struct secret_spec create;   /* OP_CREATE_SECRET */
	struct secret_change update; /* OP_UPDATE_SECRET; OP_DELETE_SECRET uses name */
	struct override_change ov;   /* OP_SET_OVERRIDE, OP_DELETE_OVERRIDE */
};

/* What a change did (or, on a dry run, would do). */
struct change_result {
	enum change_kind kind;            /* added, changed or removed */
	char secret[LIMIT_NAME_BUF];      /* the secret */
	char environment[LIMIT_NAME_BUF]; /* "" for the project default */
	enum version version;             /* VERSION_DEFAULT for the project default */
};

/* The secret a change names (for messages and duplicate checks). */
const char *change_secret(const struct change *c);

/* Begins e's message with the change it is about: "change 3 (secret DB_PASSWORD): ...". */
void changeset_blame(struct cof_err *e, size_t i, const char *secret);
/* Applies changes[0..n) to project at one new revision, all or nothing: expected_revision (0: do
 * not check) is the project's; on a dry run everything is checked and reported and nothing is
 * written. audit is the call's row: one copy per change (its secret, environment, version and
 * the revision) is inserted with the changes, and audit->committed then says the call is
 * recorded (as store_tx says of a single write's row). results has room for n. On failure
 * *failed is the index of the change that failed (or n when the set as a whole did: the
 * project, its revision, the quota) and e's message begins with it. */
int changeset_apply(struct session *ss, const char *project, int64_t expected_revision,
                    bool dry_run, const struct change *changes, size_t n, struct audit_row *audit,
                    struct change_result *results, int64_t *revision, size_t *failed,
                    struct cof_err *e) __attribute__((warn_unused_result));

#endif
