/* tokens.c - token transactions and authentication (see tokens.h). */
#include "tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "crypt.h"
#include "session_internal.h"
#include "store.h"

_Static_assert(CRYPT_TOKEN_CHARS + 1 <= TOKEN_SECRET_MAX, "TOKEN_SECRET_MAX is too small");
_Static_assert(LIMIT_TOKEN_ENVS == LIMIT_TOKEN_ENVS, "token scopes differ");
_Static_assert(LIMIT_NAME_BUF == LIMIT_NAME_BUF, "name sizes differ");

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
static int insert(struct store *s, struct crypt_keyring *kr, const struct store_token *t,
                  const char *secret, int64_t ttl_seconds, struct token *out, struct cof_err *e)
{
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES];
	struct store_token row;
	int rc = crypt_token_hash(kr, secret, hash, e);
	if (rc == 0)
		rc = store_token_insert(s, t, hash, sizeof(hash), ttl_seconds, &row, e);
	if (rc == 0)
		token_of(&row, out);
	return rc;
}

struct create_tx {
	struct session *ss;            /* the session it runs in */
	const struct token_spec *spec; /* what to create */
	const struct store_token *t;   /* in: what to store */
	const char *secret;            /* in: its bearer string */
	struct token *out;             /* the token made */
};

static int create_body(struct store *s, void *arg, struct cof_err *e)
{
	struct create_tx *x = arg;
	struct store_project p;
	int rc = 0;
	if (x->spec->role != ROLE_ADMIN && (rc = store_project_get(s, x->spec->project, &p, e)))
		return rc;
	return insert(s, x->ss->kr, x->t, x->secret, x->spec->ttl_seconds, x->out, e);
}

int tokens_create(struct session *ss, const struct token_spec *spec, struct audit_row *audit,
                  struct token *out, char *secret, struct cof_err *e)
{
	struct store_token t = {.role = spec->role, .versions = spec->versions};
	snprintf(t.name, sizeof(t.name), "%s", spec->name);
	snprintf(t.project, sizeof(t.project), "%s", spec->project);
	for (size_t i = 0; i < spec->n_envs && i < LIMIT_TOKEN_ENVS; i++)
		snprintf(t.envs[t.n_envs++], LIMIT_NAME_BUF, "%s", spec->envs[i]);
	crypt_token_id(t.id);
	crypt_token_new(secret);
	/* The token and its audit row commit together, or neither does. */
	struct create_tx x = {ss, spec, &t, secret, out};
	int rc = session_tx(ss, STORE_TX_WRITE, create_body, &x, audit, e);
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

static int revoke_body(struct store *s, void *arg, struct cof_err *e)
{
	return store_token_revoke(s, arg, e);
}

int tokens_revoke(struct session *ss, const char *id, struct audit_row *audit, struct cof_err *e)
{
	return session_tx(ss, STORE_TX_WRITE, revoke_body, (void *)id, audit, e);
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
	struct cache *cache = session_cache(ss);
	if (cache && cache_token_get(cache, hash, out)) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		int64_t now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
		if (out->expire_us == 0 || out->expire_us > now_us)
			return 0;
		return cof_err_set(e, COF_EUNAUTH, "the token is not valid, revoked or expired");
	}
	if (ss->store == NULL)
		return cof_err_set(e, COF_EWOULDBLOCK, "the token must be looked up");
	/* Taken before the read: a revocation committed meanwhile keeps it out of the cache. */
	uint64_t generation = cache ? cache_generation(cache) : 0;
	rc = store_token_by_hash(ss->store, hash, sizeof(hash), &row, stored, e);
	if (rc == COF_ENOTFOUND ||
	    (rc == 0 && (!crypt_equal(hash, stored, sizeof(hash)) || !row.usable)))
		return cof_err_set(e, COF_EUNAUTH, "the token is not valid, revoked or expired");
	if (rc == 0) {
		token_of(&row, out);
		if (cache)
			cache_token_put(cache, generation, hash, out);
	}
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
	return insert(ss->store, ss->kr, &t, secret, 0, out, e);
}

/* ---- console sessions ---- */

struct session_start_tx {
	const uint8_t *hash;  /* the secret's */
	const char *token_id; /* whose */
	int max_seconds;      /* its absolute end from now */
	int idle_seconds;     /* sessions unused this long are swept */
	int64_t *expire_us;   /* its end */
};

static int session_start_body(struct store *s, void *arg, struct cof_err *e)
{
	struct session_start_tx *x = arg;
	return store_session_insert(s, x->hash, CRYPT_TOKEN_HASH_BYTES, x->token_id, x->max_seconds,
	                            x->idle_seconds, x->expire_us, e);
}

int tokens_session_start(struct session *ss, const struct token *who, int max_seconds,
                         int idle_seconds, struct audit_row *audit, char *secret,
                         int64_t *expire_us, struct cof_err *e)
{
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES];
	crypt_token_new(secret);
	int rc = crypt_token_hash(ss->kr, secret, hash, e);
	struct session_start_tx x = {hash, who->id, max_seconds, idle_seconds, expire_us};
	if (rc == 0)
		rc = session_tx(ss, STORE_TX_WRITE, session_start_body, &x, audit, e);
	if (rc)
		crypt_wipe(secret, TOKEN_SECRET_MAX);
	return rc;
}

int tokens_session_use(struct session *ss, const char *secret, int idle_seconds, struct token *out,
                       int64_t *expire_us, struct cof_err *e)
{
	if (!crypt_token_well_formed(secret))
		return cof_err_set(e, COF_EUNAUTH, "the session is not valid");
	if (ss->store == NULL)
		return cof_err_set(e, COF_EWOULDBLOCK, "the session must be looked up");
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES];
	struct store_token row;
	int rc = crypt_token_hash(ss->kr, secret, hash, e);
	if (rc == 0)
		rc = store_session_use(ss->store, hash, sizeof(hash), idle_seconds, &row, expire_us,
		                       e);
	if (rc == COF_ENOTFOUND || (rc == 0 && !row.usable))
		return cof_err_set(
		        e, COF_EUNAUTH,
		        "the session has ended (signed out, unused too long, or its token "
		        "revoked or expired): sign in again");
	if (rc == 0)
		token_of(&row, out);
	return rc;
}

struct session_end_tx {
	const uint8_t *hash; /* the secret's */
};

static int session_end_body(struct store *s, void *arg, struct cof_err *e)
{
	struct session_end_tx *x = arg;
	return store_session_delete(s, x->hash, CRYPT_TOKEN_HASH_BYTES, e);
}

int tokens_session_end(struct session *ss, const char *secret, struct audit_row *audit,
                       struct cof_err *e)
{
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES];
	int rc = crypt_token_well_formed(secret)
	                 ? crypt_token_hash(ss->kr, secret, hash, e)
	                 : cof_err_set(e, COF_EUNAUTH, "the session is not valid");
	struct session_end_tx x = {hash};
	return rc ? rc : session_tx(ss, STORE_TX_WRITE, session_end_body, &x, audit, e);
}
