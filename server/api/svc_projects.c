/* svc_projects.c - service coffer.v1.Projects. */
#include "call.h"
#include "policy.h"

#include <stdio.h>
#include "log.h"
#include "projects.h"

static void fill_project(struct call *c, void *msg, const void *row)
{
	Coffer__V1__Project *out = msg;
	const struct project *p = row;
	out->name = call_strdup(c, p->name);
	out->description = call_strdup(c, p->description);
	out->revision = p->revision;
	out->create_time = call_timestamp(c, p->create_us);
}

static void project_key(const void *row, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", ((const struct project *)row)->name);
}

static int create_project(struct call *c, const Coffer__V1__CreateProjectRequest *req,
                          Coffer__V1__Project *resp)
{
	int code;
	if ((code = call_check_project(c, req->name)) ||
	    (code = call_check_description(c, req->description)))
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct project p;
	if (ss == NULL ||
	    projects_create(ss, req->name, req->description, policy_write_audit(c), &p, &e) != 0)
		return call_error(c, &e);
	fill_project(c, resp, &p);
	return RPC_OK;
}

static int get_project(struct call *c, const Coffer__V1__GetProjectRequest *req,
                       Coffer__V1__Project *resp)
{
	int code = call_check_project(c, req->name);
	if (code)
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct project p;
	if (ss == NULL || projects_get(ss, req->name, &p, &e) != 0)
		return call_error(c, &e);
	fill_project(c, resp, &p);
	return RPC_OK;
}

static int list_projects(struct call *c, const Coffer__V1__ListProjectsRequest *req,
                         Coffer__V1__ListProjectsResponse *resp)
{
	struct page pg;
	int code = call_page_begin(c, req->page_token, req->page_size, &pg);
	if (code)
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct project *rows = call_alloc(c, sizeof(*rows) * (size_t)(pg.limit + 1));
	int n = 0;
	if (rows == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (ss == NULL || projects_list(ss, pg.after, pg.limit + 1, rows, &n, &e) != 0)
		return call_error(c, &e);
	return call_page_end(c, &pg, rows, sizeof(*rows), n, &coffer__v1__project__descriptor,
	                     fill_project, project_key, &resp->projects, &resp->n_projects,
	                     &resp->next_page_token);
}

static int delete_project(struct call *c, const Coffer__V1__DeleteProjectRequest *req,
                          Google__Protobuf__Empty *resp)
{
	int code;
	if ((code = call_check_project(c, req->name)) ||
	    (code = call_check_revision(c, "expected_revision", req->expected_revision)))
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	if (ss == NULL ||
	    projects_delete(ss, req->name, req->expected_revision, policy_write_audit(c), &e) != 0)
		return call_error(c, &e);
	log_info("project \"%s\" deleted", req->name);
	return RPC_OK;
}

const Coffer__V1__Projects__Handlers projects_handlers = {
        .create_project = create_project,
        .get_project = get_project,
        .list_projects = list_projects,
        .delete_project = delete_project,
};
