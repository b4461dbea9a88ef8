/* handlers_projects.c - service coffer.v1.Projects. */
#include "handlers.h"

#include "log.h"
#include "validate.h"

static void fill_project(struct rpc_ctx *ctx, Coffer__V1__Project *out,
                         const struct store_project *p)
{
	out->name = rpc_strdup(ctx, p->name);
	out->description = rpc_strdup(ctx, p->description);
	out->revision = p->revision;
	out->create_time = handler_timestamp(ctx, p->create_us);
}

static int create_project(struct rpc_ctx *ctx, const Coffer__V1__CreateProjectRequest *req,
                          Coffer__V1__Project *resp)
{
	int code = handler_check_project(ctx, req->name);
	if (code)
		return code;
	if ((code = handler_check_description(ctx, req->description)))
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_project p;
	if (s == NULL || store_project_create(s, req->name, req->description, &p, &e) != 0)
		return handler_error(ctx, &e);
	fill_project(ctx, resp, &p);
	return RPC_OK;
}

static int get_project(struct rpc_ctx *ctx, const Coffer__V1__GetProjectRequest *req,
                       Coffer__V1__Project *resp)
{
	int code = handler_check_project(ctx, req->name);
	if (code)
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_project p;
	if (s == NULL || store_project_get(s, req->name, &p, &e) != 0)
		return handler_error(ctx, &e);
	fill_project(ctx, resp, &p);
	return RPC_OK;
}

static int list_projects(struct rpc_ctx *ctx, const Coffer__V1__ListProjectsRequest *req,
                         Coffer__V1__ListProjectsResponse *resp)
{
	char after[STORE_NAME_MAX];
	int limit = 0;
	int code = handler_page(ctx, req->page_token, req->page_size, after, sizeof(after), &limit);
	if (code)
		return code;
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	struct store_project *rows = rpc_alloc(ctx, sizeof(*rows) * (size_t)(limit + 1));
	int n = 0;
	if (rows == NULL)
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (s == NULL || store_project_list(s, after, limit + 1, rows, &n, &e) != 0)
		return handler_error(ctx, &e);
	int shown = n > limit ? limit : n;
	resp->projects = rpc_alloc(ctx, sizeof(*resp->projects) * (size_t)(shown + 1));
	for (int i = 0; i < shown; i++) {
		Coffer__V1__Project *p = rpc_alloc(ctx, sizeof(*p));
		coffer__v1__project__init(p);
		fill_project(ctx, p, &rows[i]);
		resp->projects[i] = p;
	}
	resp->n_projects = (size_t)shown;
	if (n > limit)
		resp->next_page_token = handler_next_token(ctx, rows[shown - 1].name);
	return RPC_OK;
}

static int delete_project(struct rpc_ctx *ctx, const Coffer__V1__DeleteProjectRequest *req,
                          Google__Protobuf__Empty *resp)
{
	int code = handler_check_project(ctx, req->name);
	if (code)
		return code;
	if (req->expected_revision < 0)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "expected_revision must not be negative");
	struct cof_err e = {0};
	struct store *s = handler_store(ctx, &e);
	if (s == NULL || store_project_delete(s, req->name, req->expected_revision, &e) != 0)
		return handler_error(ctx, &e);
	log_info("project \"%s\" deleted", req->name);
	return RPC_OK;
}

const Coffer__V1__Projects__Handlers projects_handlers = {
        .create_project = create_project,
        .get_project = get_project,
        .list_projects = list_projects,
        .delete_project = delete_project,
};
