/* tokens.c - token transactions and authentication (see tokens.h). */
#include "tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"
#include "store.h"

_Static_assert(CRYPT_TOKEN_CHARS + 1 <= TOKEN_SECRET_MAX, "TOKEN_SECRET_MAX is too small");
_Static_assert(MODEL_TOKEN_MAX_ENVS == STORE_TOKEN_MAX_ENVS, "token scopes differ");
_Static_assert(MODEL_NAME_MAX == STORE_NAME_MAX, "name sizes differ");

static void token_of(const struct store_token *row, struct token *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", row->id);
	snprintf(out->name, sizeof(out->name), "%s", row->name);
	out->role = row->role;
	snprintf(out->project, sizeof(out->project), "%s", row->project);
	out->n_envs = row->n_envs;
	memcpy(out->envs, row->envs, sizeof(out->envs));
	out->versions = row->versions;
	out->create_us = row->create_us;
	out->expire_us = row->expire_us;
}

/* Hashes secret and stores the token t under it. */
static int insert(struct session *ss, const struct store_token *t, const char *secret,
                  int64_t ttl_seconds, struct token *out, struct cof_err *e)
{
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES];
	struct store_token row;
	int rc = crypt_token_hash(ss->kr, secret, hash, e);
	if (rc == 0)
		rc = store_token_insert(ss->store, t, hash, sizeof(hash), ttl_seconds, &row, e);
	if (rc == 0)
		token_of(&row, out);
	return rc;
}

int tokens_create(struct session *ss, const struct token_spec *spec, struct token *out,
                  char *secret, struct cof_err *e)
{
	struct store_token t = {.role = spec->role, .versions = spec->versions};
	snprintf(t.name, sizeof(t.name), "%s", spec->name);
	snprintf(t.project, sizeof(t.project), "%s", spec->project);
	for (size_t i = 0; i < spec->n_envs && i < STORE_TOKEN_MAX_ENVS; i++)
		snprintf(t.envs[t.n_envs++], STORE_NAME_MAX, "%s", spec->envs[i]);
	crypt_token_id(t.id);
	struct store_project p;
	int rc = 0;
	if (spec->role != ROLE_ADMIN && (rc = store_project_get(ss->store, spec->project, &p, e)))
		return rc;
	crypt_token_new(secret);
	rc = insert(ss, &t, secret, spec->ttl_seconds, out, e);
	if (rc)
		crypt_wipe(secret, TOKEN_SECRET_MAX);
	return rc;
}

int tokens_list(struct session *ss, const char *project, bool all, const char *after, int limit,
                struct token *out, int *n, struct cof_err *e)
{
	*n = 0;
	struct store_token *rows = calloc((size_t)limit + 1, sizeof(*rows));
	if (rows == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	int rc = store_token_list(ss->store, project, all, after, limit, rows, n, e);
	for (int i = 0; rc == 0 && i < *n; i++)
		token_of(&rows[i], &out[i]);
	free(rows);
	return rc;
}

int tokens_revoke(struct session *ss, const char *id, struct cof_err *e)
{
	return store_token_revoke(ss->store, id, e);
}

int tokens_authenticate(struct session *ss, const char *bearer, struct token *out,
                        struct cof_err *e)
{
	if (!crypt_token_well_formed(bearer))
		return cof_err_set(e, COF_EUNAUTH, "the token is not valid");
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES], stored[CRYPT_TOKEN_HASH_BYTES];
	struct store_token row;
	int rc = crypt_token_hash(ss->kr, bearer, hash, e);
	if (rc)
		return rc;
	rc = store_token_by_hash(ss->store, hash, sizeof(hash), &row, stored, e);
	if (rc == COF_ENOTFOUND ||
	    (rc == 0 && (!crypt_equal(hash, stored, sizeof(hash)) || !row.usable)))
		return cof_err_set(e, COF_EUNAUTH, "the token is not valid, revoked or expired");
	if (rc == 0)
		token_of(&row, out);
	return rc;
}

bool tokens_id_well_formed(const char *id)
{
	if (strncmp(id, "tok_", 4) != 0 || strlen(id) != 20)
		return false;
	for (const char *p = id + 4; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

void tokens_new_secret(char *out)
{
	crypt_token_new(out);
}

bool tokens_secret_well_formed(const char *s)
{
	return crypt_token_well_formed(s);
}

int tokens_count(struct session *ss, int64_t *n, struct cof_err *e)
{
	return store_token_count(ss->store, n, e);
}

int tokens_adopt_admin(struct session *ss, const char *name, const char *secret, struct token *out,
                       struct cof_err *e)
{
	struct store_token t = {.role = ROLE_ADMIN};
	snprintf(t.name, sizeof(t.name), "%s", name);
	crypt_token_id(t.id);
	return insert(ss, &t, secret, 0, out, e);
}

int audit_log_list(struct session *ss, const char *project, bool all, int64_t since_us,
                   int64_t after_id, int limit, struct audit_row *out, int *n, struct cof_err *e)
{
	return store_audit_list(ss->store, project, all, since_us, after_id, limit, out, n, e);
}
