/*
 * catalog.h - the domain of secrets: write transactions that combine the store and crypt.
 *
 * Each function runs one transaction under the project row lock, raises the project revision by
 * exactly one when it writes, enforces the visibility rules of DESIGN.md and seals values bound
 * to their identity and revision. Serialization failures are retried a few times. Plain C: no
 * gRPC, no SQL, no libsodium here.
 */
#ifndef COFFER_CATALOG_H
#define COFFER_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypt.h"
#include "merge.h"
#include "errors.h"
#include "store.h"

enum { VIS_MASKED = 1, VIS_RESTRICTED = 2 };
enum { SOURCE_DEFAULT = 1, SOURCE_OVERRIDE = 2 };

struct catalog_secret_change {
	const char *project;       /* project name */
	const char *name;          /* secret name */
	const char *value;         /* new value, or NULL: unchanged */
	const char *description;   /* new description, or NULL: unchanged */
	int visibility;            /* 0: unchanged */
	int64_t expected_revision; /* 0: do not check */
};

struct catalog_revealed {
	char *value;      /* plaintext, NUL-terminated; free with catalog_revealed_clear */
	size_t len;       /* bytes in value */
	int source;       /* SOURCE_DEFAULT or SOURCE_OVERRIDE */
	int64_t revision; /* the revision that wrote the value */
};

int catalog_secret_create(struct store *s, struct crypt_keyring *kr, const char *project,
                          const char *name, const char *value, int visibility,
                          const char *description, struct store_secret *out, struct cof_err *e)
        __attribute__((warn_unused_result));
int catalog_secret_update(struct store *s, struct crypt_keyring *kr,
                          const struct catalog_secret_change *c, struct store_secret *out,
                          struct cof_err *e) __attribute__((warn_unused_result));
int catalog_secret_delete(struct store *s, const char *project, const char *name,
                          int64_t expected_revision, struct cof_err *e)
        __attribute__((warn_unused_result));
/* The effective value of a masked secret in (environment, version); environment "" or NULL: the
 * project default. Restricted secrets: COF_EPRECOND. */
int catalog_secret_reveal(struct store *s, struct crypt_keyring *kr, const char *project,
                          const char *name, const char *environment, int version,
                          struct catalog_revealed *out, struct cof_err *e)
        __attribute__((warn_unused_result));
void catalog_revealed_clear(struct catalog_revealed *r);

/* ---- environments, overrides, merge and resolve (catalog_envs.c) ---- */

int catalog_env_create(struct store *s, const char *project, const char *name,
                       const char *description, struct store_environment *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* `main` cannot be deleted (COF_EPRECOND). */
int catalog_env_delete(struct store *s, const char *project, const char *name,
                       int64_t expected_revision, struct cof_err *e)
        __attribute__((warn_unused_result));

struct catalog_override_change {
	const char *project;       /* project name */
	const char *environment;   /* environment name */
	int version;               /* 1 draft, 2 live */
	const char *secret;        /* secret name */
	const char *value;         /* the value to set; ignored by delete */
	int64_t expected_revision; /* the override's current revision; 0: do not check */
};

int catalog_override_set(struct store *s, struct crypt_keyring *kr,
                         const struct catalog_override_change *c, struct store_override *out,
                         struct cof_err *e) __attribute__((warn_unused_result));
int catalog_override_delete(struct store *s, const struct catalog_override_change *c,
                            struct cof_err *e) __attribute__((warn_unused_result));

struct catalog_merge_request {
	const char *project;              /* project name */
	const char *source;               /* environment merged from */
	const char *target;               /* environment merged into */
	bool dry_run;                     /* compute the changes, write nothing */
	int64_t expected_source_revision; /* 0: do not check */
	int64_t expected_target_revision; /* 0: do not check */
	bool delete_source;               /* delete the source in the same transaction */
};

struct catalog_merge_change {
	char secret[STORE_NAME_MAX]; /* secret name */
	int version;                 /* 1 draft, 2 live */
	int kind;                    /* MERGE_ADDED, MERGE_CHANGED, MERGE_REMOVED */
};

struct catalog_merge_result {
	struct catalog_merge_change *changes; /* malloc'd; free with catalog_merge_result_clear */
	size_t n_changes;                     /* entries in changes */
	int live_overrides_applied;           /* live overrides the target has afterwards */
	int64_t revision;                     /* the merge's revision, or the current one */
	bool applied;                         /* false for a dry run */
};

/* The target's overrides of both versions become exactly the source's, in one transaction and one
 * revision (none when nothing changes and the source stays). */
int catalog_merge(struct store *s, struct crypt_keyring *kr,
                  const struct catalog_merge_request *req, struct catalog_merge_result *out,
                  struct cof_err *e) __attribute__((warn_unused_result));
void catalog_merge_result_clear(struct catalog_merge_result *r);

struct catalog_resolve_request {
	const char *project;      /* project name */
	const char *environment;  /* environment name */
	int version;              /* 1 draft, 2 live */
	const char *const *names; /* secrets asked for; none: all */
	size_t n_names;           /* entries in names */
	int64_t min_revision;     /* wait (up to wait_ms) until the project reaches it */
	int64_t at_revision;      /* 0: now; else the state as it was then */
	int64_t known_revision;   /* equal to the current revision: not_modified */
	int64_t wait_ms;          /* how long min_revision may wait */
};

struct catalog_resolved_secret {
	const char *name; /* points into the result's rows */
	char *value;      /* plaintext, wiped by catalog_resolved_clear */
	size_t len;       /* bytes in value */
	int visibility;   /* 1 masked, 2 restricted */
	int source;       /* SOURCE_DEFAULT or SOURCE_OVERRIDE */
	int64_t revision; /* the revision that wrote the value */
};

struct catalog_resolved {
	int64_t revision;                        /* the snapshot's project revision */
	bool not_modified;                       /* known_revision matched: no secrets */
	struct catalog_resolved_secret *secrets; /* sorted by name */
	size_t n_secrets;                        /* entries in secrets */
	const char **missing;                    /* asked-for names that do not exist */
	size_t n_missing;                        /* entries in missing */
	struct store_sealed *rows;               /* backing storage */
	size_t n_rows;                           /* entries in rows */
};

/* Every value from one snapshot; see API.md, ResolveSecrets. */
int catalog_resolve(struct store *s, struct crypt_keyring *kr,
                    const struct catalog_resolve_request *req, struct catalog_resolved *out,
                    struct cof_err *e) __attribute__((warn_unused_result));
void catalog_resolved_clear(struct catalog_resolved *r);

#endif
