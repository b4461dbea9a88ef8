/*
 * value.h - sealing a value into its row and opening it again, bound to its identity (project,
 * secret, environment, version, revision): what the secrets, environments and resolve
 * transactions share.
 */
#ifndef COFFER_VALUE_H
#define COFFER_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "model.h"
#include "session.h"

struct store;
struct store_sealed;

/* In a write transaction on s: seals value for (project, secret, environment, version) at
 * revision `rev` with the session's keyring and stores it as the current row, ending the
 * previous one. origin_id: the value row it was copied from (a merge), 0 when written directly.
 */
int value_put(struct session *ss, struct store *s, int64_t project_id, int64_t secret_id,
              int64_t env_id, int version, int64_t rev, const char *value, int64_t origin_id,
              struct cof_err *e) __attribute__((warn_unused_result));
/* Seals value for (project, secret, environment, version) at revision `rev` into *blob (free
 * with free) and *term, for a set-based write (store_values_replace). */
int value_seal(struct session *ss, int64_t project_id, int64_t secret_id, int64_t env_id,
               int version, int64_t rev, const char *value, uint8_t **blob, size_t *len,
               int32_t *term, struct cof_err *e) __attribute__((warn_unused_result));
/* Opens a sealed row of project `project_id` into *plain (NUL-terminated, *len bytes; free with
 * value_free). A failure is COF_ETAMPER and names the secret, never a value. */
int value_open(struct session *ss, int64_t project_id, const struct store_sealed *row, char **plain,
               size_t *len, struct cof_err *e) __attribute__((warn_unused_result));
/* A sealed value and the identity it is bound to. */
struct value_at {
	int64_t project_id, secret_id, environment_id; /* environment 0: the default */
	enum version version;  /* VERSION_DEFAULT for the default, else the override's */
	int64_t valid_from;    /* the revision that wrote it */
	const char *name;      /* the secret's name, for errors */
	const uint8_t *sealed; /* the blob */
	size_t sealed_len;     /* its bytes */
	void *(*alloc)(void *arg, size_t n); /* where the plaintext goes; NULL: malloc */
	void *alloc_arg;                     /* its argument */
};
/* value_open for a value held elsewhere (the cache), into at->alloc's memory when set (its owner
 * wipes and frees it; value_free only for malloc). A memory-only session whose keyring lacks the
 * value's term: COF_EWOULDBLOCK. */
int value_open_at(struct session *ss, const struct value_at *at, char **plain, size_t *len,
                  struct cof_err *e) __attribute__((warn_unused_result));
/* Wipes and frees a plaintext from value_open. NULL-safe. */
void value_free(char *plain, size_t len);

#endif
