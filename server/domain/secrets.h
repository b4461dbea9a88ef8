/*
 * secrets.h - a project's secrets: create, update, delete, read, list, reveal.
 *
 * Each write runs one transaction under the project row lock, raises the project revision by
 * exactly one, enforces the visibility rules (restricted never becomes masked again, and is never
 * revealed) and seals values bound to their identity and revision. Writes take the caller's audit
 * row (NULL: none) into their transaction.
 */
#ifndef COFFER_SECRETS_H
#define COFFER_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "model.h"
#include "session.h"

struct secret_spec {
	const char *project;        /* project name */
	const char *name;           /* secret name */
	const char *value;          /* the default value */
	enum visibility visibility; /* masked or restricted */
	const char *description;    /* free text */
};

struct secret_change {
	const char *project;       /* project name */
	const char *name;          /* secret name */
	const char *value;         /* new value, or NULL: unchanged */
	const char *description;   /* new description, or NULL: unchanged */
	int visibility;            /* 0: unchanged */
	int64_t expected_revision; /* 0: do not check */
};

struct revealed {
	char *value;              /* plaintext, NUL-terminated; free with secrets_revealed_clear */
	size_t len;               /* bytes in value */
	enum value_source source; /* default or override */
	int64_t revision;         /* the revision that wrote the value */
};

int secrets_create(struct session *ss, const struct secret_spec *spec, struct audit_row *audit,
                   struct secret *out, struct cof_err *e) __attribute__((warn_unused_result));
int secrets_update(struct session *ss, const struct secret_change *c, struct audit_row *audit,
                   struct secret *out, struct cof_err *e) __attribute__((warn_unused_result));
/* Deletes the secret and its overrides. */
int secrets_delete(struct session *ss, const char *project, const char *name,
                   int64_t expected_revision, struct audit_row *audit, struct cof_err *e)
        __attribute__((warn_unused_result));
int secrets_get(struct session *ss, const char *project, const char *name, struct secret *out,
                struct cof_err *e) __attribute__((warn_unused_result));
/* Up to `limit` secrets of the project named after `after`, by name; *n is how many. */
int secrets_list(struct session *ss, const char *project, const char *after, int limit,
                 struct secret *out, int *n, struct cof_err *e) __attribute__((warn_unused_result));
/* The effective value of a masked secret in (environment, version); environment "" or NULL: the
 * project default. Restricted secrets: COF_EPRECOND. */
int secrets_reveal(struct session *ss, const char *project, const char *name,
                   const char *environment, int version, struct revealed *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Wipes and frees a revealed value. NULL-safe. */
void secrets_revealed_clear(struct revealed *r);

#endif
