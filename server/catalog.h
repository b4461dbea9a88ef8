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

#endif
