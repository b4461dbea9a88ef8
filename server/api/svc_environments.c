/* svc_environments.c - service coffer.v1.Environments. */
#include "call.h"
#include "policy.h"

#include <stdio.h>
#include <string.h>

#include "environments.h"
#include "validate.h"

/* The project and environment a listed row belongs to: the request's. */
struct env_row {
	const char *project;     /* project name */
	const char *environment; /* for overrides: the environment name */
	const void *item;        /* struct environment or struct override */
};

static void fill_env_of(struct call *c, Coffer__V1__Environment *out, const char *project,
                        const struct environment *env)
{
	out->project = call_strdup(c, project);
	out->name = call_strdup(c, env->name);
	out->description = call_strdup(c, env->description);
	out->revision = env->revision;
	out->create_time = call_timestamp(c, env->create_us);
}

static void fill_env(struct call *c, void *msg, const void *row)
{
	const struct env_row *r = row;
	fill_env_of(c, msg, r->project, r->item);
}

static void env_key(const void *row, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s",
	         ((const struct environment *)((const struct env_row *)row)->item)->name);
}

static int check_env(struct call *c, const char *project, const char *name)
{
	int code = call_check_project(c, project);
	if (code == RPC_OK)
		code = call_check_environment(c, "environment name", name);
	return code;
}

static int create_environment(struct call *c, const Coffer__V1__CreateEnvironmentRequest *req,
                              Coffer__V1__Environment *resp)
{
	int code;
	if ((code = check_env(c, req->project, req->name)) ||
	    (code = call_check_description(c, req->description)))
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct environment env;
	if (ss == NULL || environments_create(ss, req->project, req->name, req->description,
	                                      policy_write_audit(c), &env, &e))
		return call_error(c, &e);
	fill_env_of(c, resp, req->project, &env);
	return RPC_OK;
}

static int get_environment(struct call *c, const Coffer__V1__GetEnvironmentRequest *req,
                           Coffer__V1__Environment *resp)
{
	int code = check_env(c, req->project, req->name);
	if (code)
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct environment env;
	if (ss == NULL || environments_get(ss, req->project, req->name, &env, &e))
		return call_error(c, &e);
	fill_env_of(c, resp, req->project, &env);
	return RPC_OK;
}

static int list_environments(struct call *c, const Coffer__V1__ListEnvironmentsRequest *req,
                             Coffer__V1__ListEnvironmentsResponse *resp)
{
	struct page pg;
	int code, n = 0;
	if ((code = call_check_project(c, req->project)) ||
	    (code = call_page_begin(c, req->page_token, req->page_size, &pg)))
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct environment *found = call_alloc(c, sizeof(*found) * (size_t)(pg.limit + 1));
	struct env_row *rows = call_alloc(c, sizeof(*rows) * (size_t)(pg.limit + 1));
	if (found == NULL || rows == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (ss == NULL ||
	    environments_list(ss, req->project, pg.after, pg.limit + 1, found, &n, &e))
		return call_error(c, &e);
	for (int i = 0; i < n; i++)
		rows[i] = (struct env_row){req->project, NULL, &found[i]};
	return call_page_end(c, &pg, rows, sizeof(*rows), n, &coffer__v1__environment__descriptor,
	                     fill_env, env_key, &resp->environments, &resp->n_environments,
	                     &resp->next_page_token);
}

static int delete_environment(struct call *c, const Coffer__V1__DeleteEnvironmentRequest *req,
                              Google__Protobuf__Empty *resp)
{
	int code;
	if ((code = check_env(c, req->project, req->name)) ||
	    (code = call_check_revision(c, "expected_revision", req->expected_revision)))
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	if (ss == NULL || environments_delete(ss, req->project, req->name, req->expected_revision,
	                                      policy_write_audit(c), &e))
		return call_error(c, &e);
	return RPC_OK;
}

static int check_override(struct call *c, const char *project, const char *environment, int version,
                          const char *secret, int64_t expected)
{
	int code;
	if ((code = check_env(c, project, environment)) ||
	    (code = call_check_version(c, version, false)) ||
	    (code = call_check_secret(c, secret)) ||
	    (code = call_check_revision(c, "expected_revision", expected)))
		return code;
	return RPC_OK;
}

static void fill_override_of(struct call *c, Coffer__V1__Override *out, const char *project,
                             const char *environment, const struct override *o)
{
	out->project = call_strdup(c, project);
	out->environment = call_strdup(c, environment);
	out->version = (Coffer__V1__Version)o->version;
	out->secret = call_strdup(c, o->secret);
	out->revision = o->revision;
	out->update_time = call_timestamp(c, o->update_us);
}

static void fill_override(struct call *c, void *msg, const void *row)
{
	const struct env_row *r = row;
	fill_override_of(c, msg, r->project, r->environment, r->item);
}

/* Override pages continue after "SECRET/VERSION". */
static void override_key(const void *row, char *buf, size_t cap)
{
	const struct override *o = ((const struct env_row *)row)->item;
	snprintf(buf, cap, "%s/%d", o->secret, o->version);
}

static int set_override(struct call *c, const Coffer__V1__SetOverrideRequest *req,
                        Coffer__V1__Override *resp)
{
	int code;
	if ((code = check_override(c, req->project, req->environment, req->version, req->secret,
	                           req->expected_revision)) ||
	    (code = call_check_value(c, req->value)))
		return code;
	struct override_change ch = {req->project, req->environment, (enum version)req->version,
	                             req->secret,  req->value,       req->expected_revision};
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct override o;
	if (ss == NULL || overrides_set(ss, &ch, policy_write_audit(c), &o, &e))
		return call_error(c, &e);
	fill_override_of(c, resp, req->project, req->environment, &o);
	return RPC_OK;
}

static int delete_override(struct call *c, const Coffer__V1__DeleteOverrideRequest *req,
                           Google__Protobuf__Empty *resp)
{
	int code = check_override(c, req->project, req->environment, req->version, req->secret,
	                          req->expected_revision);
	if (code)
		return code;
	struct override_change ch = {
	        req->project, req->environment,      (enum version)req->version, req->secret,
	        NULL,         req->expected_revision};
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	if (ss == NULL || overrides_delete(ss, &ch, policy_write_audit(c), &e))
		return call_error(c, &e);
	return RPC_OK;
}

/* Splits an override page's key "SECRET/VERSION" into after and *after_version. */
static int split_override_key(struct call *c, char *key, int *after_version)
{
	*after_version = 0;
	if (key[0] == '\0')
		return RPC_OK;
	char *slash = strrchr(key, '/');
	if (slash == NULL || (strcmp(slash, "/1") != 0 && strcmp(slash, "/2") != 0))
		return call_fail(c, RPC_INVALID_ARGUMENT, "page_token is not valid");
	*slash = '\0';
	if (!validate_secret_name(key))
		return call_fail(c, RPC_INVALID_ARGUMENT, "page_token is not valid");
	*after_version = slash[1] - '0';
	return RPC_OK;
}

static int list_overrides(struct call *c, const Coffer__V1__ListOverridesRequest *req,
                          Coffer__V1__ListOverridesResponse *resp)
{
	struct page pg;
	int after_version = 0, n = 0, code;
	if ((code = check_env(c, req->project, req->environment)) ||
	    (code = call_check_version(c, req->version, true)) ||
	    (code = call_page_begin(c, req->page_token, req->page_size, &pg)) ||
	    (code = split_override_key(c, pg.after, &after_version)))
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct override *found = call_alloc(c, sizeof(*found) * (size_t)(pg.limit + 1));
	struct env_row *rows = call_alloc(c, sizeof(*rows) * (size_t)(pg.limit + 1));
	if (found == NULL || rows == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (ss == NULL || overrides_list(ss, req->project, req->environment, req->version, pg.after,
	                                 after_version, pg.limit + 1, found, &n, &e))
		return call_error(c, &e);
	for (int i = 0; i < n; i++)
		rows[i] = (struct env_row){req->project, req->environment, &found[i]};
	return call_page_end(c, &pg, rows, sizeof(*rows), n, &coffer__v1__override__descriptor,
	                     fill_override, override_key, &resp->overrides, &resp->n_overrides,
	                     &resp->next_page_token);
}

static int merge_environment(struct call *c, const Coffer__V1__MergeEnvironmentRequest *req,
                             Coffer__V1__MergeEnvironmentResponse *resp)
{
	const char *target = req->target && *req->target ? req->target : "main";
	int code;
	if ((code = call_check_project(c, req->project)) ||
	    (code = call_check_environment(c, "source", req->source)) ||
	    (code = call_check_environment(c, "target", target)) ||
	    (code = call_check_revision(c, "expected_source_revision",
	                                req->expected_source_revision)) ||
	    (code = call_check_revision(c, "expected_target_revision",
	                                req->expected_target_revision)))
		return code;
	if (strcmp(req->source, target) == 0)
		return call_fail(c, RPC_INVALID_ARGUMENT,
		                 "source and target are the same environment");
	struct merge_request m = {
	        .project = req->project,
	        .source = req->source,
	        .target = target,
	        .dry_run = req->dry_run,
	        .expected_source_revision = req->expected_source_revision,
	        .expected_target_revision = req->expected_target_revision,
	        .delete_source = req->delete_source,
	};
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct merge_result r;
	if (ss == NULL || environments_merge(ss, &m, policy_write_audit(c), &r, &e))
		return call_error(c, &e);
	resp->changes = call_alloc(c, sizeof(*resp->changes) * (r.n_changes + 1));
	for (size_t i = 0; resp->changes && i < r.n_changes; i++) {
		Coffer__V1__OverrideChange *ch = call_alloc(c, sizeof(*ch));
		if (ch == NULL)
			break;
		coffer__v1__override_change__init(ch);
		ch->secret = call_strdup(c, r.changes[i].secret);
		ch->version = (Coffer__V1__Version)r.changes[i].version;
		ch->kind = (Coffer__V1__ChangeKind)r.changes[i].kind;
		resp->changes[i] = ch;
		resp->n_changes = i + 1;
	}
	resp->live_overrides_applied = r.live_overrides_applied;
	resp->revision = r.revision;
	resp->applied = r.applied;
	call_note_revision(c, r.revision);
	bool complete = resp->n_changes == r.n_changes;
	environments_merge_clear(&r);
	return complete ? RPC_OK : call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
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
