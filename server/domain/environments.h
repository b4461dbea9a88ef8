/*
 * environments.h - a project's environments, their draft and live overrides, and merging one
 * environment into another.
 *
 * Each write runs one transaction under the project row lock and raises the project revision by
 * exactly one (a merge that changes nothing writes nothing). `main` cannot be deleted. Writes take
 * the caller's audit row (NULL: none) into their transaction.
 */
#ifndef COFFER_ENVIRONMENTS_H
#define COFFER_ENVIRONMENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "model.h"
#include "session.h"

int environments_create(struct session *ss, const char *project, const char *name,
                        const char *description, struct audit_row *audit, struct environment *out,
                        struct cof_err *e) __attribute__((warn_unused_result));
int environments_get(struct session *ss, const char *project, const char *name,
                     struct environment *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Up to `limit` environments of the project named after `after`, by name; *n is how many. */
int environments_list(struct session *ss, const char *project, const char *after, int limit,
                      struct environment *out, int *n, struct cof_err *e)
        __attribute__((warn_unused_result));
/* `main` cannot be deleted (COF_EPRECOND). */
int environments_delete(struct session *ss, const char *project, const char *name,
                        int64_t expected_revision, struct audit_row *audit, struct cof_err *e)
        __attribute__((warn_unused_result));

struct override_change {
	const char *project;       /* project name */
	const char *environment;   /* environment name */
	enum version version;      /* draft or live */
	const char *secret;        /* secret name */
	const char *value;         /* the value to set; ignored by delete */
	int64_t expected_revision; /* the override's current revision; 0: do not check */
};

int overrides_set(struct session *ss, const struct override_change *c, struct audit_row *audit,
                  struct override *out, struct cof_err *e) __attribute__((warn_unused_result));
int overrides_delete(struct session *ss, const struct override_change *c, struct audit_row *audit,
                     struct cof_err *e) __attribute__((warn_unused_result));
/* Up to `limit` overrides of the environment (version 0: both) after (after_secret,
 * after_version), by secret then version; *n is how many. */
int overrides_list(struct session *ss, const char *project, const char *environment, int version,
                   const char *after_secret, int after_version, int limit, struct override *out,
                   int *n, struct cof_err *e) __attribute__((warn_unused_result));

struct merge_request {
	const char *project;              /* project name */
	const char *source;               /* environment merged from */
	const char *target;               /* environment merged into */
	bool dry_run;                     /* compute the changes, write nothing */
	int64_t expected_source_revision; /* 0: do not check */
	int64_t expected_target_revision; /* 0: do not check */
	bool delete_source;               /* delete the source in the same transaction */
};

struct merge_diff {
	char secret[LIMIT_NAME_BUF]; /* secret name */
	enum version version;        /* draft or live */
	enum change_kind kind;       /* added, changed or removed */
};

struct merge_result {
	struct merge_diff *changes; /* malloc'd; free with environments_merge_clear */
	size_t n_changes;           /* entries in changes */
	int live_overrides_applied; /* live overrides the target has afterwards */
	int64_t revision;           /* the merge's revision, or the current one */
	bool applied;               /* false for a dry run */
};

/* The target's overrides of both versions become exactly the source's, in one transaction and one
 * revision (none when nothing changes and the source stays). */
int environments_merge(struct session *ss, const struct merge_request *req, struct audit_row *audit,
                       struct merge_result *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Frees a merge result. NULL-safe. */
void environments_merge_clear(struct merge_result *r);

#endif
