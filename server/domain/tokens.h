/*
 * tokens.h - bearer tokens: create (the secret is shown once), list, revoke, authenticate, and the
 * first admin token of a fresh database.
 *
 * A token's secret is random (crypt.h), stored only as a keyed hash, and compared in constant
 * time. Roles and scopes are the model's (model.h); what each may call is the api's policy.
 */
#ifndef COFFER_TOKENS_H
#define COFFER_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer_limits.h"
#include "errors.h"
#include "model.h"
#include "session.h"

/* Room for a token secret and its NUL. */
#define TOKEN_SECRET_MAX 64
/* The longest time-to-live a token may have. */

struct token_spec {
	const char *name;        /* label, 1..128 bytes */
	enum role role;          /* what it may do */
	const char *project;     /* scope; "" for admin */
	const char *const *envs; /* runtime scope; none: all */
	size_t n_envs;           /* entries in envs, at most LIMIT_TOKEN_ENVS */
	int versions;            /* version_bit()s; 0: all */
	int64_t ttl_seconds;     /* 0: never expires */
};

/* Creates a token; secret (TOKEN_SECRET_MAX bytes) receives its bearer string. A non-admin token's
 * project must exist, and the token is bound to it (deleting the project revokes it). The
 * caller's audit row (NULL: none) is written in the same transaction. */
int tokens_create(struct session *ss, const struct token_spec *spec, struct audit_row *audit,
                  struct token *out, char *secret, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Tokens not revoked of `project` ("" and all: every token), by id after `after`. */
int tokens_list(struct session *ss, const char *project, bool all, const char *after, int limit,
                struct token *out, int *n, struct cof_err *e) __attribute__((warn_unused_result));
/* COF_ENOTFOUND when there is no such usable token. The audit row (NULL: none) is written in
 * the same transaction. */
int tokens_revoke(struct session *ss, const char *id, struct audit_row *audit, struct cof_err *e)
        __attribute__((warn_unused_result));
/* The token whose secret is `bearer`; COF_EUNAUTH when it is malformed, unknown, revoked or
 * expired. */
int tokens_authenticate(struct session *ss, const char *bearer, struct token *out,
                        struct cof_err *e) __attribute__((warn_unused_result));
/* Whether a token id looks like one (tok_ and 16 hex digits). */
bool tokens_id_well_formed(const char *id);

/* A new random bearer secret in out (TOKEN_SECRET_MAX bytes). */
void tokens_new_secret(char *out);
/* Whether s could be a bearer secret (prefix, length, alphabet, checksum). */
bool tokens_secret_well_formed(const char *s);
/* ---- console sessions: a person's token exchanged for a secret the console keeps in a cookie */

/* Starts a session of token `who` (secret: TOKEN_SECRET_MAX bytes, receives its secret) that ends
 * after max_seconds, or sooner when unused for idle_seconds; *expire_us its end. The audit row
 * (NULL: none) is written in the same transaction. */
int tokens_session_start(struct session *ss, const struct token *who, int max_seconds,
                         int idle_seconds, struct audit_row *audit, char *secret,
                         int64_t *expire_us, struct cof_err *e) __attribute__((warn_unused_result));
/* The token of the session whose secret is `secret`, marking it used; *expire_us its end.
 * COF_EUNAUTH when the session is unknown or has ended, or its token is revoked or expired. */
int tokens_session_use(struct session *ss, const char *secret, int idle_seconds, struct token *out,
                       int64_t *expire_us, struct cof_err *e) __attribute__((warn_unused_result));
/* Ends the session whose secret is `secret`, with the audit row (NULL: none). */
int tokens_session_end(struct session *ss, const char *secret, struct audit_row *audit,
                       struct cof_err *e) __attribute__((warn_unused_result));

/* How many tokens exist, revoked ones included. */
int tokens_count(struct session *ss, int64_t *n, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Stores an admin token named `name` whose bearer string is `secret` (the bootstrap token).
 * COF_EEXIST when that secret is already a token. */
int tokens_adopt_admin(struct session *ss, const char *name, const char *secret, struct token *out,
                       struct cof_err *e) __attribute__((warn_unused_result));

#endif
