/* api.c - the services table, the api's life (its threads, watches and what the domain hears,
 * fanned out to parked calls and watches), and the call log (see api.h). The runtime's entries
 * are run.c's. */
#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "domain.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "ratelimit.h"
#include "run.h"
#include "waits.h"
#include "watch_streams.h"
#include "workq.h"

/* The wire contract's numbers are the model's. */
_Static_assert((int)COFFER__V1__VERSION__VERSION_DRAFT == (int)VERSION_DRAFT, "Version");
_Static_assert((int)COFFER__V1__VERSION__VERSION_LIVE == (int)VERSION_LIVE, "Version");
_Static_assert((int)COFFER__V1__VISIBILITY__VISIBILITY_MASKED == (int)VISIBILITY_MASKED,
               "Visibility");
_Static_assert((int)COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED == (int)VISIBILITY_RESTRICTED,
               "Visibility");
_Static_assert((int)COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_DEFAULT == (int)SOURCE_DEFAULT,
               "ValueSource");
_Static_assert((int)COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_OVERRIDE == (int)SOURCE_OVERRIDE,
               "ValueSource");
_Static_assert((int)COFFER__V1__CHANGE_KIND__CHANGE_KIND_ADDED == (int)CHANGE_ADDED, "ChangeKind");
_Static_assert((int)COFFER__V1__CHANGE_KIND__CHANGE_KIND_CHANGED == (int)CHANGE_CHANGED,
               "ChangeKind");
_Static_assert((int)COFFER__V1__CHANGE_KIND__CHANGE_KIND_REMOVED == (int)CHANGE_REMOVED,
               "ChangeKind");
_Static_assert((int)COFFER__V1__ROLE__ROLE_ADMIN == (int)ROLE_ADMIN, "Role");
_Static_assert((int)COFFER__V1__ROLE__ROLE_EDITOR == (int)ROLE_EDITOR, "Role");
_Static_assert((int)COFFER__V1__ROLE__ROLE_VIEWER == (int)ROLE_VIEWER, "Role");
_Static_assert((int)COFFER__V1__ROLE__ROLE_RUNTIME == (int)ROLE_RUNTIME, "Role");

const struct rpc_binding api_bindings[] = {
        {&coffer__v1__projects__service, &projects_handlers},
        {&coffer__v1__secrets__service, &secrets_handlers},
        {&coffer__v1__environments__service, &environments_handlers},
        {&coffer__v1__access__service, &access_handlers},
        {&coffer__console__v1__sessions__service, &sessions_handlers},
        {&grpc__health__v1__health__service, &health_handlers},
        {&grpc__reflection__v1alpha__server_reflection__service, &reflection_handlers},
};
const size_t api_n_bindings = sizeof(api_bindings) / sizeof(api_bindings[0]);

void api_drain(void *app)
{
	struct api *a = app;
	atomic_store(&a->draining, true);
	if (a->waits)
		waits_wake_all(a->waits);
	if (a->watches)
		watch_streams_end_all(a->watches);
}

void api_project_changed(void *app, int64_t project_id, int64_t revision)
{
	struct api *a = app;
	if (a->waits)
		waits_changed(a->waits, project_id, revision);
	if (a->watches)
		watch_streams_changed(a->watches, project_id, revision);
}

/* What the domain hears of a token's revocation: its streams end. */
static void token_revoked(void *app, const char *token_id)
{
	struct api *a = app;
	if (a->watches)
		watch_streams_token_revoked(a->watches, token_id);
}

/* The database threads and parked calls (run.c), the watches, and what the domain hears fanned
 * out to both. */
static int start_threads(struct api *a, struct cof_err *e)
{
	int rc = api_run_start(a, e);
	if (rc == 0 && watch_streams_new(a, a->cfg.watch_heartbeat_ms, a->cfg.watch_per_token,
	                                 &a->watches) != 0)
		rc = cof_err_set(e, COF_EINTERNAL, "cannot start the watches");
	if (rc == 0)
		domain_on_change(a->domain, &(struct listener_hooks){.project = api_project_changed,
		                                                     .token = token_revoked,
		                                                     .arg = a});
	return rc;
}

int api_new(const struct api_config *cfg, struct domain *d, struct audit *audit, struct metrics *m,
            struct api **out, struct cof_err *e)
{
	*out = NULL;
	struct api *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	*a = (struct api){.cfg = *cfg, .domain = d, .audit = audit, .metrics = m};
	int rc = cfg->rate_limit > 0 ? ratelimit_new(cfg->rate_limit, cfg->rate_burst, &a->rate, e)
	                             : 0;
	if (rc == 0 && cfg->unauthenticated_limit > 0)
		rc = ratelimit_new(cfg->unauthenticated_limit, 0, &a->unauthenticated, e);
	if (rc == 0 && d != NULL && cfg->db_threads > 0)
		rc = start_threads(a, e);
	if (rc) {
		api_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

bool api_has_policy(const char *path)
{
	for (size_t b = 0; b < api_n_bindings; b++) {
		const coffer_service_desc *svc = api_bindings[b].service;
		for (size_t m = 0; m < svc->n_methods; m++)
			if (strcmp(svc->methods[m].path, path) == 0)
				return policy_of(&svc->methods[m]) != NULL;
	}
	return false;
}

void api_set_metrics(struct api *a, struct metrics *m)
{
	a->metrics = m;
}

double api_db_backlog(struct api *a)
{
	return a->jobs ? (double)workq_backlog(a->jobs) : 0;
}

double api_parked(struct api *a)
{
	return a->waits ? (double)waits_count(a->waits) : 0;
}

double api_watching(struct api *a)
{
	return a->watches ? (double)watch_streams_count(a->watches) : 0;
}

void api_free(struct api *a)
{
	if (a == NULL)
		return;
	if (a->domain)
		domain_on_change(a->domain, NULL);
	api_run_stop(a);
	watch_streams_free(a->watches);
	a->watches = NULL;
	ratelimit_free(a->rate);
	ratelimit_free(a->unauthenticated);
	free(a);
}

void api_on_call(const struct rpc_call_info *info, void *app)
{
	struct api *a = app;
	metrics_observe(a->metrics, info->method, info->code, info->duration_ms);
	enum log_level level = info->code == RPC_INTERNAL ? LOG_ERROR : LOG_INFO;
	if (!log_enabled(level))
		return;
	char members[1024];
	char method[256] = "", peer[128] = "", project[160] = "";
	log_json_escape(method, sizeof(method), info->method);
	log_json_escape(peer, sizeof(peer), info->peer);
	log_json_escape(project, sizeof(project), info->project ? info->project : "");
	snprintf(members, sizeof(members),
	         "\"request_id\":%" PRIu64
	         ",\"method\":\"%s\",\"code\":\"%s\",\"duration_ms\":%.3f,"
	         "\"project\":\"%s\",\"peer\":\"%s\",\"transport\":\"%s\"",
	         info->request_id, method, rpc_code_name(info->code), info->duration_ms, project,
	         peer, info->transport);
	log_fields(level, "call", members);
}
