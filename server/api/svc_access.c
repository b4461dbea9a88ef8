/* svc_access.c - service coffer.v1.Access: tokens and the audit log. */
#include "call.h"
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_log.h"
#include "tokens.h"

void call_token_message(struct call *c, Coffer__V1__Token *out, const struct token *t)
{
	out->id = call_strdup(c, t->id);
	out->name = call_strdup(c, t->name);
	out->role = (Coffer__V1__Role)t->role;
	out->project = call_strdup(c, t->project);
	out->environments = call_alloc(c, sizeof(char *) * (size_t)(t->n_envs + 1));
	for (int i = 0; out->environments && i < t->n_envs; i++)
		out->environments[i] = call_strdup(c, t->envs[i]);
	out->n_environments = out->environments ? (size_t)t->n_envs : 0;
	out->versions = call_alloc(c, sizeof(*out->versions) * 2);
	out->n_versions = 0;
	for (int v = VERSION_DRAFT; out->versions && v <= VERSION_LIVE; v++)
		if (t->versions & version_bit(v))
			out->versions[out->n_versions++] = (Coffer__V1__Version)v;
	out->create_time = call_timestamp(c, t->create_us);
	if (t->expire_us)
		out->expire_time = call_timestamp(c, t->expire_us);
}

static void fill_token(struct call *c, void *msg, const void *row)
{
	call_token_message(c, msg, row);
}

static void token_key(const void *row, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", ((const struct token *)row)->id);
}

/* Checks a CreateToken request and fills spec from it. */
static int check_token_request(struct call *c, const Coffer__V1__CreateTokenRequest *req,
                               struct token_spec *spec)
{
	int role = (int)req->role, code;
	size_t name_len = strlen(req->name);
	if (name_len == 0 || name_len >= LIMIT_NAME_BUF)
		return call_fail(c, RPC_INVALID_ARGUMENT, "name must be 1 to %d bytes",
		                 LIMIT_NAME_BUF - 1);
	if (role < ROLE_ADMIN || role > ROLE_RUNTIME)
		return call_fail(
		        c, RPC_INVALID_ARGUMENT,
		        "role must be ROLE_ADMIN, ROLE_EDITOR, ROLE_VIEWER or ROLE_RUNTIME");
	if (role == ROLE_ADMIN && *req->project)
		return call_fail(c, RPC_INVALID_ARGUMENT, "admin tokens have no project");
	if (role != ROLE_ADMIN && (code = call_check_project(c, req->project)))
		return code;
	if (role != ROLE_RUNTIME && (req->n_environments || req->n_versions))
		return call_fail(c, RPC_INVALID_ARGUMENT,
		                 "only runtime tokens are scoped to environments and versions");
	if (req->n_environments > LIMIT_TOKEN_ENVS)
		return call_fail(c, RPC_INVALID_ARGUMENT, "at most %d environments",
		                 LIMIT_TOKEN_ENVS);
	if (req->ttl_seconds < 0 || req->ttl_seconds > LIMIT_TOKEN_TTL_SECONDS)
		return call_fail(c, RPC_INVALID_ARGUMENT,
		                 "ttl_seconds must be from 0 to ten years");
	for (size_t i = 0; i < req->n_environments; i++)
		if ((code = call_check_environment(c, "environments", req->environments[i])))
			return code;
	*spec = (struct token_spec){
	        .name = req->name,
	        .role = role,
	        .project = req->project,
	        .envs = (const char *const *)req->environments,
	        .n_envs = req->n_environments,
	        .ttl_seconds = req->ttl_seconds,
	};
	for (size_t i = 0; i < req->n_versions; i++) {
		if ((code = call_check_version(c, req->versions[i], false)))
			return code;
		spec->versions |= version_bit(req->versions[i]);
	}
	return RPC_OK;
}

static int create_token(struct call *c, const Coffer__V1__CreateTokenRequest *req,
                        Coffer__V1__CreateTokenResponse *resp)
{
	struct token_spec spec;
	int code = check_token_request(c, req, &spec);
	if (code)
		return code;
	char *secret = call_alloc(c, TOKEN_SECRET_MAX);
	resp->token = call_alloc(c, sizeof(*resp->token));
	if (secret == NULL || resp->token == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct token out;
	if (ss == NULL || tokens_create(ss, &spec, policy_write_audit(c), &out, secret, &e) != 0)
		return call_error(c, &e);
	coffer__v1__token__init(resp->token);
	call_token_message(c, resp->token, &out);
	resp->secret = secret;
	return RPC_OK;
}

static int list_tokens(struct call *c, const Coffer__V1__ListTokensRequest *req,
                       Coffer__V1__ListTokensResponse *resp)
{
	struct page pg;
	int n = 0, code;
	bool all = *req->project == '\0';
	if ((!all && (code = call_check_project(c, req->project))) ||
	    (code = call_page_begin(c, req->page_token, req->page_size, &pg)))
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct token *rows = call_alloc(c, sizeof(*rows) * (size_t)(pg.limit + 1));
	if (rows == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (ss == NULL || tokens_list(ss, req->project, all, pg.after, pg.limit + 1, rows, &n, &e))
		return call_error(c, &e);
	return call_page_end(c, &pg, rows, sizeof(*rows), n, &coffer__v1__token__descriptor,
	                     fill_token, token_key, &resp->tokens, &resp->n_tokens,
	                     &resp->next_page_token);
}

static int revoke_token(struct call *c, const Coffer__V1__RevokeTokenRequest *req,
                        Google__Protobuf__Empty *resp)
{
	if (!tokens_id_well_formed(req->id))
		return call_fail(c, RPC_INVALID_ARGUMENT, "id must be a token id (tok_...)");
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	if (ss == NULL || tokens_revoke(ss, req->id, policy_write_audit(c), &e) != 0)
		return call_error(c, &e);
	return RPC_OK;
}

static void fill_event(struct call *c, void *msg, const void *row)
{
	Coffer__V1__AuditEvent *m = msg;
	const struct audit_row *a = row;
	m->time = call_timestamp(c, a->time_us);
	m->token_id = call_strdup(c, a->token_id);
	m->method = call_strdup(c, a->method);
	m->project = call_strdup(c, a->project);
	m->environment = call_strdup(c, a->environment);
	m->secret = call_strdup(c, a->secret);
	m->version = (Coffer__V1__Version)a->version;
	m->code = a->code;
	m->peer = call_strdup(c, a->peer);
	m->revision = a->revision;
	m->count = a->count;
	m->transport = call_strdup(c, a->transport);
}

static void event_key(const void *row, char *buf, size_t cap)
{
	snprintf(buf, cap, "%lld", (long long)((const struct audit_row *)row)->id);
}

static int list_audit_events(struct call *c, const Coffer__V1__ListAuditEventsRequest *req,
                             Coffer__V1__ListAuditEventsResponse *resp)
{
	struct page pg;
	int n = 0, code;
	bool all = *req->project == '\0';
	if ((!all && (code = call_check_project(c, req->project))) ||
	    (code = call_page_begin(c, req->page_token, req->page_size, &pg)))
		return code;
	char *end = NULL;
	int64_t after_id = *pg.after ? strtoll(pg.after, &end, 10) : 0;
	if (*pg.after && (*end != '\0' || after_id < 0))
		return call_fail(c, RPC_INVALID_ARGUMENT, "page_token is not valid");
	/* Timestamps run from 0001 to 9999; since before 1970 means from the first row. */
	if (req->since &&
	    (req->since->seconds > 253402300799LL || req->since->seconds < -62135596800LL ||
	     req->since->nanos < 0 || req->since->nanos > 999999999))
		return call_fail(c, RPC_INVALID_ARGUMENT, "since is not a valid time");
	int64_t since = req->since && req->since->seconds > 0
	                        ? req->since->seconds * 1000000 + req->since->nanos / 1000
	                        : 0;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct audit_row *rows = call_alloc(c, sizeof(*rows) * (size_t)(pg.limit + 1));
	if (rows == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (ss == NULL ||
	    audit_log_list(ss, req->project, all, since, after_id, pg.limit + 1, rows, &n, &e))
		return call_error(c, &e);
	return call_page_end(c, &pg, rows, sizeof(*rows), n, &coffer__v1__audit_event__descriptor,
	                     fill_event, event_key, &resp->events, &resp->n_events,
	                     &resp->next_page_token);
}

/* The caller's own token: what a runtime token may resolve, without asking anyone. */
static int who_am_i(struct call *c, const Coffer__V1__WhoAmIRequest *req, Coffer__V1__Token *resp)
{
	(void)req;
	if (!c->authenticated || c->caller.id[0] == '\0')
		return call_fail(c, RPC_UNAUTHENTICATED, "a bearer token is required");
	call_token_message(c, resp, &c->caller);
	return RPC_OK;
}

const Coffer__V1__Access__Handlers access_handlers = {
        .who_am_i = who_am_i,
        .create_token = create_token,
        .list_tokens = list_tokens,
        .revoke_token = revoke_token,
        .list_audit_events = list_audit_events,
};
