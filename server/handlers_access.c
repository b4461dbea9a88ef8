/* handlers_access.c - service coffer.v1.Access: tokens and the audit log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "handlers.h"
#include "validate.h"

static void fill_token(struct rpc_ctx *ctx, Coffer__V1__Token *out, const struct store_token *t)
{
	out->id = rpc_strdup(ctx, t->id);
	out->name = rpc_strdup(ctx, t->name);
	out->role = (Coffer__V1__Role)t->role;
	out->project = rpc_strdup(ctx, t->project);
	out->environments = rpc_alloc(ctx, sizeof(char *) * (size_t)(t->n_envs + 1));
	for (int i = 0; out->environments && i < t->n_envs; i++)
		out->environments[i] = rpc_strdup(ctx, t->envs[i]);
	out->n_environments = out->environments ? (size_t)t->n_envs : 0;
	out->versions = rpc_alloc(ctx, sizeof(*out->versions) * 2);
	out->n_versions = 0;
	for (int v = 1; out->versions && v <= 2; v++)
		if (t->versions & v)
			out->versions[out->n_versions++] = (Coffer__V1__Version)v;
	out->create_time = handler_timestamp(ctx, t->create_us);
	if (t->expire_us)
		out->expire_time = handler_timestamp(ctx, t->expire_us);
}

static int create_token(struct rpc_ctx *ctx, const Coffer__V1__CreateTokenRequest *req,
                        Coffer__V1__CreateTokenResponse *resp)
{
	struct store_token t = {.role = (int)req->role};
	int code;
	size_t name_len = strlen(req->name);
	if (name_len == 0 || name_len >= sizeof(t.name))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "name must be 1 to %zu bytes",
		                sizeof(t.name) - 1);
	if ((int)req->role < ROLE_ADMIN || (int)req->role > ROLE_RUNTIME)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "role must be ROLE_ADMIN, ROLE_EDITOR, "
		                "ROLE_VIEWER or ROLE_RUNTIME");
	if ((int)req->role == ROLE_ADMIN && *req->project)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "admin tokens have no project");
	if ((int)req->role != ROLE_ADMIN && (code = handler_check_project(ctx, req->project)))
		return code;
	if ((int)req->role != ROLE_RUNTIME && (req->n_environments || req->n_versions))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "only runtime tokens are scoped to environments and versions");
	if (req->n_environments > STORE_TOKEN_MAX_ENVS)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "at most %d environments",
		                STORE_TOKEN_MAX_ENVS);
	if (req->ttl_seconds < 0 || req->ttl_seconds > 10LL * 366 * 24 * 3600)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "ttl_seconds must be from 0 to ten years");
	for (size_t i = 0; i < req->n_environments; i++) {
		if ((code = handler_check_environment(ctx, "environments", req->environments[i])))
			return code;
		snprintf(t.envs[t.n_envs++], STORE_NAME_MAX, "%s", req->environments[i]);
	}
	for (size_t i = 0; i < req->n_versions; i++) {
		if ((code = handler_check_version(ctx, req->versions[i], false)))
			return code;
		t.versions |= req->versions[i];
	}
	snprintf(t.name, sizeof(t.name), "%s", req->name);
	snprintf(t.project, sizeof(t.project), "%s", req->project);
	crypt_token_id(t.id);

	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_project p;
	if (s == NULL ||
	    ((int)req->role != ROLE_ADMIN && store_project_get(s, req->project, &p, &e) != 0))
		return handler_error(ctx, &e);
	char *secret = rpc_alloc(ctx, CRYPT_TOKEN_CHARS + 1);
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES];
	if (secret == NULL)
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	crypt_token_new(secret);
	struct store_token out;
	if (crypt_token_hash(handler_app(ctx)->keyring, secret, hash, &e) != 0 ||
	    store_token_insert(s, &t, hash, sizeof(hash), req->ttl_seconds, &out, &e) != 0)
		return handler_error(ctx, &e);
	resp->token = rpc_alloc(ctx, sizeof(*resp->token));
	if (resp->token == NULL)
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	coffer__v1__token__init(resp->token);
	fill_token(ctx, resp->token, &out);
	resp->secret = secret;
	return RPC_OK;
}

static int list_tokens(struct rpc_ctx *ctx, const Coffer__V1__ListTokensRequest *req,
                       Coffer__V1__ListTokensResponse *resp)
{
	char after[STORE_NAME_MAX];
	int limit = 0, n = 0, code;
	bool all = *req->project == '\0';
	if ((!all && (code = handler_check_project(ctx, req->project))) ||
	    (code = handler_page(ctx, req->page_token, req->page_size, after, sizeof(after),
	                         &limit)))
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_token *rows = rpc_alloc(ctx, sizeof(*rows) * (size_t)(limit + 1));
	if (rows == NULL)
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (s == NULL || store_token_list(s, req->project, all, after, limit + 1, rows, &n, &e))
		return handler_error(ctx, &e);
	int shown = n > limit ? limit : n;
	resp->tokens = rpc_alloc(ctx, sizeof(*resp->tokens) * (size_t)(shown + 1));
	for (int i = 0; resp->tokens && i < shown; i++) {
		Coffer__V1__Token *m = rpc_alloc(ctx, sizeof(*m));
		coffer__v1__token__init(m);
		fill_token(ctx, m, &rows[i]);
		resp->tokens[i] = m;
	}
	resp->n_tokens = (size_t)shown;
	if (n > limit)
		resp->next_page_token = handler_next_token(ctx, rows[shown - 1].id);
	return RPC_OK;
}

static int revoke_token(struct rpc_ctx *ctx, const Coffer__V1__RevokeTokenRequest *req,
                        Google__Protobuf__Empty *resp)
{
	if (strncmp(req->id, "tok_", 4) != 0 || strlen(req->id) != 20)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "id must be a token id (tok_...)");
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	if (s == NULL || store_token_revoke(s, req->id, &e) != 0)
		return handler_error(ctx, &e);
	return RPC_OK;
}

static int list_audit_events(struct rpc_ctx *ctx, const Coffer__V1__ListAuditEventsRequest *req,
                             Coffer__V1__ListAuditEventsResponse *resp)
{
	char after[32];
	int limit = 0, n = 0, code;
	bool all = *req->project == '\0';
	if ((!all && (code = handler_check_project(ctx, req->project))) ||
	    (code = handler_page(ctx, req->page_token, req->page_size, after, sizeof(after),
	                         &limit)))
		return code;
	char *end = NULL;
	int64_t after_id = *after ? strtoll(after, &end, 10) : 0;
	if (*after && (*end != '\0' || after_id < 0))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "page_token is not valid");
	int64_t since = req->since ? req->since->seconds * 1000000 + req->since->nanos / 1000 : 0;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_audit *rows = rpc_alloc(ctx, sizeof(*rows) * (size_t)(limit + 1));
	if (rows == NULL)
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (s == NULL ||
	    store_audit_list(s, req->project, all, since, after_id, limit + 1, rows, &n, &e))
		return handler_error(ctx, &e);
	int shown = n > limit ? limit : n;
	resp->events = rpc_alloc(ctx, sizeof(*resp->events) * (size_t)(shown + 1));
	for (int i = 0; resp->events && i < shown; i++) {
		const struct store_audit *a = &rows[i];
		Coffer__V1__AuditEvent *m = rpc_alloc(ctx, sizeof(*m));
		coffer__v1__audit_event__init(m);
		m->time = handler_timestamp(ctx, a->time_us);
		m->token_id = rpc_strdup(ctx, a->token_id);
		m->method = rpc_strdup(ctx, a->method);
		m->project = rpc_strdup(ctx, a->project);
		m->environment = rpc_strdup(ctx, a->environment);
		m->secret = rpc_strdup(ctx, a->secret);
		m->version = (Coffer__V1__Version)a->version;
		m->code = a->code;
		m->peer = rpc_strdup(ctx, a->peer);
		m->revision = a->revision;
		resp->events[i] = m;
	}
	resp->n_events = (size_t)shown;
	if (n > limit) {
		char last[32];
		snprintf(last, sizeof(last), "%lld", (long long)rows[shown - 1].id);
		resp->next_page_token = handler_next_token(ctx, last);
	}
	return RPC_OK;
}

const Coffer__V1__Access__Handlers access_handlers = {
        .create_token = create_token,
        .list_tokens = list_tokens,
        .revoke_token = revoke_token,
        .list_audit_events = list_audit_events,
};
