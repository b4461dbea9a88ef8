/* handlers_secrets.c - service coffer.v1.Secrets. */
#include "handlers.h"

#include <string.h>

#include "access.h"
#include "catalog.h"
#include "validate.h"

static int check_names(struct rpc_ctx *ctx, const char *project, const char *name)
{
	int code = handler_check_project(ctx, project);
	if (code == RPC_OK && name)
		code = handler_check_secret(ctx, name);
	return code;
}

static void fill_secret(struct rpc_ctx *ctx, Coffer__V1__Secret *out, const char *project,
                        const struct store_secret *s)
{
	out->project = rpc_strdup(ctx, project);
	out->name = rpc_strdup(ctx, s->name);
	out->visibility = (Coffer__V1__Visibility)s->visibility;
	out->description = rpc_strdup(ctx, s->description);
	out->revision = s->revision;
	out->create_time = handler_timestamp(ctx, s->create_us);
	out->update_time = handler_timestamp(ctx, s->update_us);
}

static int create_secret(struct rpc_ctx *ctx, const Coffer__V1__CreateSecretRequest *req,
                         Coffer__V1__Secret *resp)
{
	int code;
	if ((code = check_names(ctx, req->project, req->name)) ||
	    (code = handler_check_value(ctx, req->value)) ||
	    (code = handler_check_description(ctx, req->description)))
		return code;
	int vis = req->visibility;
	if (vis == COFFER__V1__VISIBILITY__VISIBILITY_UNSPECIFIED)
		vis = VIS_MASKED;
	if (vis != VIS_MASKED && vis != VIS_RESTRICTED)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "visibility %d is not a known value",
		                vis);
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_secret out;
	if (s == NULL ||
	    catalog_secret_create(s, handler_app(ctx)->keyring, req->project, req->name, req->value,
	                          vis, req->description, &out, &e) != 0)
		return handler_error(ctx, &e);
	fill_secret(ctx, resp, req->project, &out);
	return RPC_OK;
}

static int get_secret(struct rpc_ctx *ctx, const Coffer__V1__GetSecretRequest *req,
                      Coffer__V1__Secret *resp)
{
	int code = check_names(ctx, req->project, req->name);
	if (code)
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_secret out;
	if (s == NULL || store_secret_get(s, req->project, req->name, &out, &e) != 0)
		return handler_error(ctx, &e);
	fill_secret(ctx, resp, req->project, &out);
	return RPC_OK;
}

static int list_secrets(struct rpc_ctx *ctx, const Coffer__V1__ListSecretsRequest *req,
                        Coffer__V1__ListSecretsResponse *resp)
{
	int code = check_names(ctx, req->project, NULL);
	if (code)
		return code;
	char after[STORE_NAME_MAX];
	int limit = 0;
	if ((code = handler_page(ctx, req->page_token, req->page_size, after, sizeof(after),
	                         &limit)))
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_secret *rows = rpc_alloc(ctx, sizeof(*rows) * (size_t)(limit + 1));
	int n = 0;
	if (rows == NULL)
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (s == NULL || store_secret_list(s, req->project, after, limit + 1, rows, &n, &e) != 0)
		return handler_error(ctx, &e);
	int shown = n > limit ? limit : n;
	resp->secrets = rpc_alloc(ctx, sizeof(*resp->secrets) * (size_t)(shown + 1));
	for (int i = 0; i < shown; i++) {
		Coffer__V1__Secret *m = rpc_alloc(ctx, sizeof(*m));
		coffer__v1__secret__init(m);
		fill_secret(ctx, m, req->project, &rows[i]);
		resp->secrets[i] = m;
	}
	resp->n_secrets = (size_t)shown;
	if (n > limit)
		resp->next_page_token = handler_next_token(ctx, rows[shown - 1].name);
	return RPC_OK;
}

static int update_secret(struct rpc_ctx *ctx, const Coffer__V1__UpdateSecretRequest *req,
                         Coffer__V1__Secret *resp)
{
	int code = check_names(ctx, req->project, req->name);
	if (code)
		return code;
	struct catalog_secret_change c = {
	        .project = req->project,
	        .name = req->name,
	        .visibility = req->visibility,
	        .expected_revision = req->expected_revision,
	};
	if (req->value_update_case == COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE) {
		if ((code = handler_check_value(ctx, req->value)))
			return code;
		c.value = req->value;
	}
	if (req->description_update_case ==
	    COFFER__V1__UPDATE_SECRET_REQUEST__DESCRIPTION_UPDATE_DESCRIPTION) {
		if ((code = handler_check_description(ctx, req->description)))
			return code;
		c.description = req->description;
	}
	if (c.visibility != 0 && c.visibility != VIS_MASKED && c.visibility != VIS_RESTRICTED)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "visibility %d is not a known value",
		                c.visibility);
	if (c.expected_revision < 0)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "expected_revision must not be negative");
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_secret out;
	if (s == NULL || catalog_secret_update(s, handler_app(ctx)->keyring, &c, &out, &e) != 0)
		return handler_error(ctx, &e);
	fill_secret(ctx, resp, req->project, &out);
	return RPC_OK;
}

static int delete_secret(struct rpc_ctx *ctx, const Coffer__V1__DeleteSecretRequest *req,
                         Google__Protobuf__Empty *resp)
{
	int code = check_names(ctx, req->project, req->name);
	if (code)
		return code;
	if (req->expected_revision < 0)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "expected_revision must not be negative");
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	if (s == NULL ||
	    catalog_secret_delete(s, req->project, req->name, req->expected_revision, &e) != 0)
		return handler_error(ctx, &e);
	return RPC_OK;
}

static int reveal_secret(struct rpc_ctx *ctx, const Coffer__V1__RevealSecretRequest *req,
                         Coffer__V1__RevealSecretResponse *resp)
{
	int code = check_names(ctx, req->project, req->name);
	if (code)
		return code;
	bool has_env = req->environment && *req->environment;
	if (has_env && !validate_slug(req->environment))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "environment name must match ^[a-z][a-z0-9-]{0,62}$");
	if (has_env && req->version != COFFER__V1__VERSION__VERSION_DRAFT &&
	    req->version != COFFER__V1__VERSION__VERSION_LIVE)
		return rpc_fail(
		        ctx, RPC_INVALID_ARGUMENT,
		        "version must be VERSION_DRAFT or VERSION_LIVE with an environment");
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct catalog_revealed r;
	if (s == NULL ||
	    catalog_secret_reveal(s, handler_app(ctx)->keyring, req->project, req->name,
	                          has_env ? req->environment : NULL, req->version, &r, &e) != 0)
		return handler_error(ctx, &e);
	resp->value = rpc_alloc(ctx, r.len + 1);
	if (resp->value == NULL) {
		catalog_revealed_clear(&r);
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	memcpy(resp->value, r.value, r.len);
	resp->source = (Coffer__V1__ValueSource)r.source;
	resp->revision = r.revision;
	access_note_revision(ctx, r.revision);
	catalog_revealed_clear(&r);
	return RPC_OK;
}

/* How long a resolve may wait for min_revision when the client set no deadline. */
#define MIN_REVISION_WAIT_MS 2000

static int resolve_secrets(struct rpc_ctx *ctx, const Coffer__V1__ResolveSecretsRequest *req,
                           Coffer__V1__ResolveSecretsResponse *resp)
{
	int code;
	if ((code = handler_check_project(ctx, req->project)) ||
	    (code = handler_check_environment(ctx, "environment", req->environment)) ||
	    (code = handler_check_version(ctx, req->version, false)) ||
	    (code = handler_check_revision(ctx, "min_revision", req->min_revision)) ||
	    (code = handler_check_revision(ctx, "at_revision", req->at_revision)) ||
	    (code = handler_check_revision(ctx, "known_revision", req->known_revision)))
		return code;
	for (size_t i = 0; i < req->n_names; i++)
		if ((code = handler_check_secret(ctx, req->names[i])))
			return code;
	int64_t wait = rpc_remaining_ms(ctx);
	if (wait < 0 || wait > MIN_REVISION_WAIT_MS)
		wait = MIN_REVISION_WAIT_MS;
	struct catalog_resolve_request r = {
	        .project = req->project,
	        .environment = req->environment,
	        .version = req->version,
	        .names = (const char *const *)req->names,
	        .n_names = req->n_names,
	        .min_revision = req->min_revision,
	        .at_revision = req->at_revision,
	        .known_revision = req->known_revision,
	        .wait_ms = wait,
	};
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct catalog_resolved out;
	if (s == NULL || catalog_resolve(s, handler_app(ctx)->keyring, &r, &out, &e))
		return handler_error(ctx, &e);
	resp->revision = out.revision;
	resp->not_modified = out.not_modified;
	access_note_revision(ctx, out.revision);
	resp->secrets = rpc_alloc(ctx, sizeof(*resp->secrets) * (out.n_secrets + 1));
	resp->missing = rpc_alloc(ctx, sizeof(*resp->missing) * (out.n_missing + 1));
	if (resp->secrets == NULL || resp->missing == NULL) {
		catalog_resolved_clear(&out);
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	for (size_t i = 0; i < out.n_secrets; i++) {
		const struct catalog_resolved_secret *x = &out.secrets[i];
		Coffer__V1__ResolvedSecret *m = rpc_alloc(ctx, sizeof(*m));
		char *value = rpc_alloc(ctx, x->len + 1);
		if (m == NULL || value == NULL) {
			catalog_resolved_clear(&out);
			return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
		}
		coffer__v1__resolved_secret__init(m);
		memcpy(value, x->value, x->len);
		m->name = rpc_strdup(ctx, x->name);
		m->value = value;
		m->visibility = (Coffer__V1__Visibility)x->visibility;
		m->source = (Coffer__V1__ValueSource)x->source;
		m->revision = x->revision;
		resp->secrets[i] = m;
	}
	resp->n_secrets = out.n_secrets;
	for (size_t i = 0; i < out.n_missing; i++)
		resp->missing[i] = rpc_strdup(ctx, out.missing[i]);
	resp->n_missing = out.n_missing;
	catalog_resolved_clear(&out);
	return RPC_OK;
}

const Coffer__V1__Secrets__Handlers secrets_handlers = {
        .create_secret = create_secret,
        .get_secret = get_secret,
        .list_secrets = list_secrets,
        .update_secret = update_secret,
        .delete_secret = delete_secret,
        .reveal_secret = reveal_secret,
        .resolve_secrets = resolve_secrets,
};
