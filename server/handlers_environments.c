/* handlers_environments.c - service coffer.v1.Environments. */
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "catalog.h"
#include "handlers.h"
#include "validate.h"

static void fill_env(struct rpc_ctx *ctx, Coffer__V1__Environment *out, const char *project,
                     const struct store_environment *env)
{
	out->project = rpc_strdup(ctx, project);
	out->name = rpc_strdup(ctx, env->name);
	out->description = rpc_strdup(ctx, env->description);
	out->revision = env->revision;
	out->create_time = handler_timestamp(ctx, env->create_us);
}

static int check_env(struct rpc_ctx *ctx, const char *project, const char *name)
{
	int code = handler_check_project(ctx, project);
	if (code == RPC_OK)
		code = handler_check_environment(ctx, "environment name", name);
	return code;
}

static int create_environment(struct rpc_ctx *ctx, const Coffer__V1__CreateEnvironmentRequest *req,
                              Coffer__V1__Environment *resp)
{
	int code;
	if ((code = check_env(ctx, req->project, req->name)) ||
	    (code = handler_check_description(ctx, req->description)))
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_environment env;
	if (s == NULL || catalog_env_create(s, req->project, req->name, req->description, &env, &e))
		return handler_error(ctx, &e);
	fill_env(ctx, resp, req->project, &env);
	return RPC_OK;
}

static int get_environment(struct rpc_ctx *ctx, const Coffer__V1__GetEnvironmentRequest *req,
                           Coffer__V1__Environment *resp)
{
	int code = check_env(ctx, req->project, req->name);
	if (code)
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_environment env;
	if (s == NULL || store_environment_get(s, req->project, req->name, &env, &e))
		return handler_error(ctx, &e);
	fill_env(ctx, resp, req->project, &env);
	return RPC_OK;
}

static int list_environments(struct rpc_ctx *ctx, const Coffer__V1__ListEnvironmentsRequest *req,
                             Coffer__V1__ListEnvironmentsResponse *resp)
{
	char after[STORE_NAME_MAX];
	int limit = 0, n = 0;
	int code;
	if ((code = handler_check_project(ctx, req->project)) ||
	    (code = handler_page(ctx, req->page_token, req->page_size, after, sizeof(after),
	                         &limit)))
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_environment *rows = rpc_alloc(ctx, sizeof(*rows) * (size_t)(limit + 1));
	if (rows == NULL)
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (s == NULL || store_environment_list(s, req->project, after, limit + 1, rows, &n, &e))
		return handler_error(ctx, &e);
	int shown = n > limit ? limit : n;
	resp->environments = rpc_alloc(ctx, sizeof(*resp->environments) * (size_t)(shown + 1));
	for (int i = 0; i < shown; i++) {
		Coffer__V1__Environment *m = rpc_alloc(ctx, sizeof(*m));
		coffer__v1__environment__init(m);
		fill_env(ctx, m, req->project, &rows[i]);
		resp->environments[i] = m;
	}
	resp->n_environments = (size_t)shown;
	if (n > limit)
		resp->next_page_token = handler_next_token(ctx, rows[shown - 1].name);
	return RPC_OK;
}

static int delete_environment(struct rpc_ctx *ctx, const Coffer__V1__DeleteEnvironmentRequest *req,
                              Google__Protobuf__Empty *resp)
{
	int code;
	if ((code = check_env(ctx, req->project, req->name)) ||
	    (code = handler_check_revision(ctx, "expected_revision", req->expected_revision)))
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	if (s == NULL || catalog_env_delete(s, req->project, req->name, req->expected_revision, &e))
		return handler_error(ctx, &e);
	return RPC_OK;
}

static int check_override(struct rpc_ctx *ctx, const char *project, const char *environment,
                          int version, const char *secret, int64_t expected)
{
	int code;
	if ((code = check_env(ctx, project, environment)) ||
	    (code = handler_check_version(ctx, version, false)) ||
	    (code = handler_check_secret(ctx, secret)) ||
	    (code = handler_check_revision(ctx, "expected_revision", expected)))
		return code;
	return RPC_OK;
}

static void fill_override(struct rpc_ctx *ctx, Coffer__V1__Override *out, const char *project,
                          const char *environment, const struct store_override *o)
{
	out->project = rpc_strdup(ctx, project);
	out->environment = rpc_strdup(ctx, environment);
	out->version = (Coffer__V1__Version)o->version;
	out->secret = rpc_strdup(ctx, o->secret);
	out->revision = o->revision;
	out->update_time = handler_timestamp(ctx, o->update_us);
}

static int set_override(struct rpc_ctx *ctx, const Coffer__V1__SetOverrideRequest *req,
                        Coffer__V1__Override *resp)
{
	int code;
	if ((code = check_override(ctx, req->project, req->environment, req->version, req->secret,
	                           req->expected_revision)) ||
	    (code = handler_check_value(ctx, req->value)))
		return code;
	struct catalog_override_change c = {req->project, req->environment, req->version,
	                                    req->secret,  req->value,       req->expected_revision};
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_override o;
	if (s == NULL || catalog_override_set(s, handler_app(ctx)->keyring, &c, &o, &e))
		return handler_error(ctx, &e);
	fill_override(ctx, resp, req->project, req->environment, &o);
	return RPC_OK;
}

static int delete_override(struct rpc_ctx *ctx, const Coffer__V1__DeleteOverrideRequest *req,
                           Google__Protobuf__Empty *resp)
{
	int code = check_override(ctx, req->project, req->environment, req->version, req->secret,
	                          req->expected_revision);
	if (code)
		return code;
	struct catalog_override_change c = {req->project, req->environment,
	                                    req->version, req->secret,
	                                    NULL,         req->expected_revision};
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	if (s == NULL || catalog_override_delete(s, &c, &e))
		return handler_error(ctx, &e);
	return RPC_OK;
}

/* Override pages continue after "SECRET/VERSION". */
static int decode_override_token(struct rpc_ctx *ctx, const char *token, int32_t size, char *after,
                                 int *after_version, int *limit)
{
	char raw[STORE_NAME_MAX + 4];
	int code = handler_page(ctx, token, size, raw, sizeof(raw), limit);
	if (code)
		return code;
	after[0] = '\0';
	*after_version = 0;
	if (raw[0] == '\0')
		return RPC_OK;
	char *slash = strrchr(raw, '/');
	if (slash == NULL || (strcmp(slash, "/1") != 0 && strcmp(slash, "/2") != 0))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "page_token is not valid");
	*slash = '\0';
	if (!validate_secret_name(raw))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "page_token is not valid");
	memcpy(after, raw, strlen(raw) + 1); /* a valid secret name fits STORE_NAME_MAX */
	*after_version = slash[1] - '0';
	return RPC_OK;
}

static int list_overrides(struct rpc_ctx *ctx, const Coffer__V1__ListOverridesRequest *req,
                          Coffer__V1__ListOverridesResponse *resp)
{
	char after[STORE_NAME_MAX];
	int after_version = 0, limit = 0, n = 0;
	int code;
	if ((code = check_env(ctx, req->project, req->environment)) ||
	    (code = handler_check_version(ctx, req->version, true)) ||
	    (code = decode_override_token(ctx, req->page_token, req->page_size, after,
	                                  &after_version, &limit)))
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_override *rows = rpc_alloc(ctx, sizeof(*rows) * (size_t)(limit + 1));
	if (rows == NULL)
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (s == NULL || store_override_list(s, req->project, req->environment, req->version, after,
	                                     after_version, limit + 1, rows, &n, &e))
		return handler_error(ctx, &e);
	int shown = n > limit ? limit : n;
	resp->overrides = rpc_alloc(ctx, sizeof(*resp->overrides) * (size_t)(shown + 1));
	for (int i = 0; i < shown; i++) {
		Coffer__V1__Override *m = rpc_alloc(ctx, sizeof(*m));
		coffer__v1__override__init(m);
		fill_override(ctx, m, req->project, req->environment, &rows[i]);
		resp->overrides[i] = m;
	}
	resp->n_overrides = (size_t)shown;
	if (n > limit) {
		char last[STORE_NAME_MAX + 4];
		snprintf(last, sizeof(last), "%s/%d", rows[shown - 1].secret,
		         rows[shown - 1].version);
		resp->next_page_token = handler_next_token(ctx, last);
	}
	return RPC_OK;
}

static int merge_environment(struct rpc_ctx *ctx, const Coffer__V1__MergeEnvironmentRequest *req,
                             Coffer__V1__MergeEnvironmentResponse *resp)
{
	const char *target = req->target && *req->target ? req->target : "main";
	int code;
	if ((code = handler_check_project(ctx, req->project)) ||
	    (code = handler_check_environment(ctx, "source", req->source)) ||
	    (code = handler_check_environment(ctx, "target", target)) ||
	    (code = handler_check_revision(ctx, "expected_source_revision",
	                                   req->expected_source_revision)) ||
	    (code = handler_check_revision(ctx, "expected_target_revision",
	                                   req->expected_target_revision)))
		return code;
	if (strcmp(req->source, target) == 0)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "source and target are the same environment");
	struct catalog_merge_request m = {
	        .project = req->project,
	        .source = req->source,
	        .target = target,
	        .dry_run = req->dry_run,
	        .expected_source_revision = req->expected_source_revision,
	        .expected_target_revision = req->expected_target_revision,
	        .delete_source = req->delete_source,
	};
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct catalog_merge_result r;
	if (s == NULL || catalog_merge(s, handler_app(ctx)->keyring, &m, &r, &e))
		return handler_error(ctx, &e);
	resp->changes = rpc_alloc(ctx, sizeof(*resp->changes) * (r.n_changes + 1));
	for (size_t i = 0; resp->changes && i < r.n_changes; i++) {
		Coffer__V1__OverrideChange *c = rpc_alloc(ctx, sizeof(*c));
		coffer__v1__override_change__init(c);
		c->secret = rpc_strdup(ctx, r.changes[i].secret);
		c->version = (Coffer__V1__Version)r.changes[i].version;
		c->kind = (Coffer__V1__ChangeKind)r.changes[i].kind;
		resp->changes[i] = c;
	}
	resp->n_changes = r.n_changes;
	resp->live_overrides_applied = r.live_overrides_applied;
	resp->revision = r.revision;
	resp->applied = r.applied;
	access_note_revision(ctx, r.revision);
	catalog_merge_result_clear(&r);
	return RPC_OK;
}

const Coffer__V1__Environments__Handlers environments_handlers = {
        .create_environment = create_environment,
        .get_environment = get_environment,
        .list_environments = list_environments,
        .delete_environment = delete_environment,
        .set_override = set_override,
        .delete_override = delete_override,
        .list_overrides = list_overrides,
        .merge_environment = merge_environment,
};
