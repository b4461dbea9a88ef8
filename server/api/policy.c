/* policy.c - the permission table, authentication and audit decisions (see policy.h). */
#include "policy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "audit.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "tokens.h"

/*
 * The table: one row per method of every service the server binds, written over the generated
 * lists of methods (X-macros in the .rpc.h files), so that a method without its
 * POLICY_<service>_<method> line does not compile. Columns: who may call it, how it is audited,
 * the request field that names the project, whether it may run from memory on a gRPC thread.
 */
#define RULE(perm, audit, project, inline_ok)                                                      \
	{                                                                                          \
		perm, audit, project, inline_ok                                                    \
	}
#define POLICY_projects_create_project         RULE(P_ADMIN, A_WRITE, "name", false)
#define POLICY_projects_get_project            RULE(P_READ, A_NONE, "name", false)
#define POLICY_projects_list_projects          RULE(P_ADMIN, A_NONE, NULL, false)
#define POLICY_projects_delete_project         RULE(P_ADMIN, A_WRITE, "name", false)
#define POLICY_secrets_create_secret           RULE(P_WRITE, A_WRITE, "project", false)
#define POLICY_secrets_get_secret              RULE(P_READ, A_NONE, "project", false)
#define POLICY_secrets_list_secrets            RULE(P_READ, A_NONE, "project", false)
#define POLICY_secrets_update_secret           RULE(P_WRITE, A_WRITE, "project", false)
#define POLICY_secrets_delete_secret           RULE(P_WRITE, A_WRITE, "project", false)
#define POLICY_secrets_reveal_secret           RULE(P_REVEAL, A_RECORD, "project", false)
#define POLICY_secrets_resolve_secrets         RULE(P_RESOLVE, A_RECORD, "project", true)
#define POLICY_secrets_watch_secrets           RULE(P_WATCH, A_RECORD, "project", true)
#define POLICY_secrets_apply_changes           RULE(P_WRITE, A_WRITE, "project", false)
#define POLICY_environments_create_environment RULE(P_WRITE, A_WRITE, "project", false)
#define POLICY_environments_get_environment    RULE(P_READ, A_NONE, "project", false)
#define POLICY_environments_list_environments  RULE(P_READ, A_NONE, "project", false)
#define POLICY_environments_delete_environment RULE(P_WRITE, A_WRITE, "project", false)
#define POLICY_environments_set_override       RULE(P_WRITE, A_WRITE, "project", false)
#define POLICY_environments_delete_override    RULE(P_WRITE, A_WRITE, "project", false)
#define POLICY_environments_list_overrides     RULE(P_READ, A_NONE, "project", false)
#define POLICY_environments_merge_environment  RULE(P_WRITE, A_WRITE, "project", false)
#define POLICY_access_create_token             RULE(P_ADMIN, A_WRITE, "project", false)
#define POLICY_access_list_tokens              RULE(P_ADMIN, A_RECORD, "project", false)
#define POLICY_access_revoke_token             RULE(P_ADMIN, A_WRITE, NULL, false)
#define POLICY_access_list_audit_events        RULE(P_ADMIN, A_NONE, "project", false)
#define POLICY_access_who_am_i                 RULE(P_ANY, A_NONE, NULL, true)
/* Console sessions: over Connect only (svc_sessions.c); signing in is a write of its own. */
#define POLICY_sessions_sign_in                         RULE(P_ANY, A_WRITE, NULL, false)
#define POLICY_sessions_sign_out                        RULE(P_ANY, A_WRITE, NULL, false)
#define POLICY_sessions_get_session                     RULE(P_ANY, A_NONE, NULL, false)
#define POLICY_health_check                             RULE(P_PUBLIC, A_NONE, NULL, true)
#define POLICY_health_watch                             RULE(P_PUBLIC, A_NONE, NULL, true)
#define POLICY_server_reflection_server_reflection_info RULE(P_PUBLIC, A_NONE, NULL, true)

#define ROW(index, service, method) [index] = POLICY_##service##_##method,
static const struct policy projects_rows[] = {COFFER__V1__PROJECTS__METHODS(ROW)};
static const struct policy secrets_rows[] = {COFFER__V1__SECRETS__METHODS(ROW)};
static const struct policy environments_rows[] = {COFFER__V1__ENVIRONMENTS__METHODS(ROW)};
static const struct policy access_rows[] = {COFFER__V1__ACCESS__METHODS(ROW)};
static const struct policy sessions_rows[] = {COFFER__CONSOLE__V1__SESSIONS__METHODS(ROW)};
static const struct policy health_rows[] = {GRPC__HEALTH__V1__HEALTH__METHODS(ROW)};
static const struct policy reflection_rows[] = {
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION__METHODS(ROW)};
#undef ROW

#define N(a) (sizeof(a) / sizeof((a)[0]))
static const struct {
	const coffer_service_desc *service; /* a service the server binds (api.c) */
	const struct policy *rows;          /* by method index */
	size_t n;                           /* rows */
} tables[] = {
        {&coffer__v1__projects__service, projects_rows, N(projects_rows)},
        {&coffer__v1__secrets__service, secrets_rows, N(secrets_rows)},
        {&coffer__v1__environments__service, environments_rows, N(environments_rows)},
        {&coffer__v1__access__service, access_rows, N(access_rows)},
        {&coffer__console__v1__sessions__service, sessions_rows, N(sessions_rows)},
        {&grpc__health__v1__health__service, health_rows, N(health_rows)},
        {&grpc__reflection__v1alpha__server_reflection__service, reflection_rows,
         N(reflection_rows)},
};

const struct policy *policy_of(const coffer_method_desc *m)
{
	for (size_t i = 0; i < N(tables); i++) {
		const coffer_service_desc *svc = tables[i].service;
		if (m >= svc->methods && m < svc->methods + svc->n_methods &&
		    (size_t)(m - svc->methods) < tables[i].n)
			return &tables[i].rows[m - svc->methods];
	}
	return NULL;
}

/* A string field of the request by name, or "" when it has none. */
static const char *str_field(const ProtobufCMessage *req, const char *name)
{
	if (req == NULL)
		return "";
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field_by_name(req->descriptor, name);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		return "";
	const char *v = *(const char *const *)((const char *)req + f->offset);
	return v ? v : "";
}

static int enum_field(const ProtobufCMessage *req, const char *name)
{
	if (req == NULL)
		return 0;
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field_by_name(req->descriptor, name);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_ENUM || f->label == PROTOBUF_C_LABEL_REPEATED)
		return 0;
	return *(const int *)((const char *)req + f->offset);
}

/* Fills the audit row's fields from whatever the request names. */
static void describe(struct call *c, const ProtobufCMessage *req)
{
	const char *path = c->method->path;
	const char *project =
	        c->policy && c->policy->project ? str_field(req, c->policy->project) : "";
	const char *env = str_field(req, "environment");
	if (*env == '\0')
		env = str_field(req, "source");
	const char *secret = str_field(req, "secret");
	if (*secret == '\0' && strstr(path, "/coffer.v1.Secrets/"))
		secret = str_field(req, "name");
	if (*env == '\0' && strstr(path, "/coffer.v1.Environments/"))
		env = str_field(req, "name");
	struct audit_row *a = &c->audit;
	snprintf(a->project, sizeof(a->project), "%s", project);
	snprintf(a->environment, sizeof(a->environment), "%s", env);
	snprintf(a->secret, sizeof(a->secret), "%s", secret);
	a->version = enum_field(req, "version");
}

/* A call refused before any token was accepted: it costs the peer's address one call of its
 * bucket, and its audit row is counted, not written on its own. */
static int refuse_tokenless(struct call *c, int code)
{
	c->tokenless = true;
	if (c->api->unauthenticated && code == RPC_UNAUTHENTICATED)
		ratelimit_take(c->api->unauthenticated, c->address);
	return code;
}

/* The credentials of an Authorization value "Bearer <token>" (the scheme in any case, as RFC 7235
 * has it), or NULL. */
static const char *bearer_of(const char *header)
{
	if (header == NULL || strncasecmp(header, "Bearer", 6) != 0 || header[6] != ' ')
		return NULL;
	header += 6;
	while (*header == ' ')
		header++;
	return header;
}

/* Looks up the bearer token into c->caller; RPC_OK or the code to answer. */
static int authenticate(struct call *c)
{
	/* An address that keeps calling without a valid token is turned away before any work. */
	if (c->api->unauthenticated && !ratelimit_allows(c->api->unauthenticated, c->address))
		return refuse_tokenless(c,
		                        call_fail(c, RPC_RESOURCE_EXHAUSTED,
		                                  "too many calls without a valid token from this "
		                                  "address; try again later"));
	const char *bearer = bearer_of(rpc_metadata(c->rpc, "authorization"));
	/* A console session, from its cookie: only for calls Connect carried (connect.c checked
	 * the request came from the console's own origin). */
	const char *cookie =
	        bearer == NULL && strcmp(rpc_transport(c->rpc), CALL_CONNECT_TRANSPORT) == 0
	                ? rpc_metadata(c->rpc, CALL_SESSION_KEY)
	                : NULL;
	if (bearer == NULL && cookie == NULL)
		return refuse_tokenless(
		        c, call_fail(c, RPC_UNAUTHENTICATED, "a bearer token is required"));
	if (bearer != NULL && !tokens_secret_well_formed(bearer))
		return refuse_tokenless(
		        c, call_fail(c, RPC_UNAUTHENTICATED, "the token is not valid"));
	struct cof_err e = {0};
	struct session *ss = call_memory_session(c, &e);
	if (ss == NULL)
		return call_error(c, &e);
	int rc = bearer ? tokens_authenticate(ss, bearer, &c->caller, &e)
	                : tokens_session_use(ss, cookie, c->api->cfg.session_idle_s, &c->caller,
	                                     &c->session_end_us, &e);
	if (rc != 0) {
		int code = call_error(c, &e);
		return code == RPC_UNAUTHENTICATED && !c->would_block ? refuse_tokenless(c, code)
		                                                      : code;
	}
	snprintf(c->audit.token_id, sizeof(c->audit.token_id), "%s", c->caller.id);
	return RPC_OK;
}

static bool in_scope(const struct call *c, const ProtobufCMessage *req)
{
	const struct token *t = &c->caller;
	const struct policy *p = c->policy;
	if (p->perm == P_PUBLIC || p->perm == P_ANY)
		return true;
	bool own = strcmp(t->project, c->audit.project) == 0;
	if (p->perm == P_WATCH && t->role != ROLE_RUNTIME)
		return t->role == ROLE_ADMIN ||
		       (own && (t->role == ROLE_EDITOR || t->role == ROLE_VIEWER));
	if (p->perm == P_RESOLVE || p->perm == P_WATCH) {
		if (t->role != ROLE_RUNTIME || !own)
			return false;
		bool env_ok = t->n_envs == 0;
		for (int i = 0; i < t->n_envs && !env_ok; i++)
			env_ok = strcmp(t->envs[i], str_field(req, "environment")) == 0;
		int v = enum_field(req, "version");
		return env_ok &&
		       (t->versions == 0 || (version_is_env(v) && (t->versions & version_bit(v))));
	}
	if (t->role == ROLE_ADMIN)
		return true;
	switch (p->perm) {
	case P_READ:
		return own && (t->role == ROLE_EDITOR || t->role == ROLE_VIEWER);
	case P_WRITE:
	case P_REVEAL:
		return own && t->role == ROLE_EDITOR;
	default:
		return false;
	}
}

int policy_authorize(struct call *c, const ProtobufCMessage *req)
{
	const char *path = c->method->path;
	describe(c, req);
	if (c->policy == NULL) {
		log_error("no permission is declared for %s: refused", path);
		return call_fail(c, RPC_PERMISSION_DENIED, "%s is not permitted", path);
	}
	if (c->policy->perm == P_PUBLIC)
		return RPC_OK;
	if (c->api->cfg.insecure_no_auth) {
		c->authenticated = true;
		snprintf(c->audit.token_id, sizeof(c->audit.token_id), "insecure-no-auth");
		return RPC_OK;
	}
	int code = authenticate(c);
	if (code)
		return code;
	c->authenticated = true;
	bool charge = c->api->rate && !c->rate_taken;
	c->rate_taken = true;
	if (charge && !ratelimit_take(c->api->rate, c->caller.id))
		return call_fail(
		        c, RPC_RESOURCE_EXHAUSTED,
		        "token %s is over its rate limit of %d calls per second; retry later",
		        c->caller.id, c->api->cfg.rate_limit);
	if (!in_scope(c, req)) {
		const char *project = c->audit.project;
		return call_fail(c, RPC_PERMISSION_DENIED,
		                 "token %s (%s%s%s) may not call %s%s%s%s", c->caller.id,
		                 role_name(c->caller.role), *c->caller.project ? " of " : "",
		                 c->caller.project, c->method->name,
		                 *project ? " in project \"" : "", project, *project ? "\"" : "");
	}
	return RPC_OK;
}

struct audit_row *policy_write_audit(struct call *c)
{
	if (c->policy == NULL || c->policy->audit != A_WRITE || !c->authenticated)
		return NULL;
	return &c->audit;
}

bool policy_audit(struct call *c, int code)
{
	const struct policy *p = c->policy;
	if ((p && p->perm == P_PUBLIC) || c->audited)
		return false;
	bool needed;
	if (code != RPC_OK)
		needed = true; /* every refused or failed call */
	else if (p == NULL || p->audit == A_NONE)
		needed = false;
	else if (p->audit == A_WRITE)
		needed = !c->audit.committed; /* a write that wrote nothing (a dry run) */
	else
		needed = true;
	if (!needed)
		return false;
	c->audit.code = code;
	if (c->tokenless) {
		/* Counted per (address, method, code) and written within seconds: a flood costs a
		 * counter, and stays visible in the audit log and the metrics. */
		snprintf(c->audit.peer, sizeof(c->audit.peer), "%s", c->address);
		audit_count(c->api->audit, &c->audit);
		metrics_tokenless_refusal(c->api->metrics);
		return false;
	}
	return true;
}
