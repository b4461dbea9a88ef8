/* svc_health.c - grpc.health.v1.Health/Check: SERVING while the database answers (as the
 * listener last saw it, within seconds: a probe costs no database round trip). */
#include "call.h"

#include <string.h>

#include "coffer_registry.h"
#include "domain.h"

static bool known_service(const char *name)
{
	if (name == NULL || *name == '\0')
		return true;
	for (size_t f = 0; f < coffer__n_files; f++)
		for (size_t s = 0; s < coffer__files[f]->n_services; s++)
			if (strcmp(coffer__files[f]->services[s]->name, name) == 0)
				return true;
	return false;
}

static int check(struct call *c, const Grpc__Health__V1__HealthCheckRequest *req,
                 Grpc__Health__V1__HealthCheckResponse *resp)
{
	/* "liveness": the process serves gRPC; it does not depend on the database, so that an
	 * outage makes replicas unready (service "") without restarting them. */
	if (strcmp(req->service, "liveness") == 0) {
		resp->status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
		return RPC_OK;
	}
	if (!known_service(req->service))
		return call_fail(c, RPC_NOT_FOUND, "unknown service \"%s\"", req->service);
	bool up = c->api->domain != NULL && domain_db_ready(c->api->domain);
	resp->status = up ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
	                  : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	return RPC_OK;
}

const Grpc__Health__V1__Health__Handlers health_handlers = {
        .check = check,
        /* watch: UNIMPLEMENTED; Kubernetes and load balancers poll Check */
};
