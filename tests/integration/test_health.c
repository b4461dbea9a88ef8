/*
 * test_health.c - the protocol around the services: grpc.health.v1 for every service (and
 * NOT_FOUND for an unknown one), UNIMPLEMENTED for an unknown method, RESOURCE_EXHAUSTED for a
 * request over the size limit; and /metrics after some traffic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "helpers.h"

START_TEST(health_and_unknown_methods)
{
	Grpc__Health__V1__HealthCheckRequest h = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	const char *services[] = {"", "coffer.v1.Projects", "coffer.v1.Secrets",
	                          "coffer.v1.Environments", "coffer.v1.Access"};
	for (size_t i = 0; i < 5; i++) {
		h.service = (char *)services[i];
		Grpc__Health__V1__HealthCheckResponse *r = NULL;
		coffer_error err;
		ck_assert_int_eq(grpc_health_v1_health_check(ch, &h, &r, &err), 0);
		ck_assert_int_eq(r->status,
		                 GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	h.service = "coffer.v1.Nope";
	EXPECT_CODE(grpc_health_v1_health_check(
	                    ch, &h, (Grpc__Health__V1__HealthCheckResponse **)&resp_, &err_),
	            5);

	coffer_method_desc fake =
	        coffer__v1__projects__service.methods[COFFER__V1__PROJECTS__GET_PROJECT];
	fake.path = "/coffer.v1.Nope/Nothing";
	Coffer__V1__GetProjectRequest g = COFFER__V1__GET_PROJECT_REQUEST__INIT;
	g.name = "x";
	EXPECT_CODE(coffer__call_unary(ch, &fake, &g.base, &resp_, &err_), 12);
	/* A request over the size limit. */
	char *huge = malloc(5 << 20);
	memset(huge, 'x', (5 << 20) - 1);
	huge[(5 << 20) - 1] = '\0';
	Coffer__V1__CreateProjectRequest c = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	c.name = (char *)uniq("huge");
	c.description = huge;
	EXPECT_CODE(
	        coffer_v1_projects_create_project(ch, &c, (Coffer__V1__Project **)&resp_, &err_),
	        8);
	free(huge);
}
END_TEST

START_TEST(metrics_after_traffic)
{
	int port = server_metrics_port(srv);
	ck_assert_int_gt(port, 0);
	const char *p = uniq("metrics");
	create_project(p);
	ck_assert_int_eq(project_revision(p), 1); /* a GetProject */
	coffer_error err;
	ck_assert_int_eq(reveal(ch, p, "NOPE", NULL, &err), 5);
	/* A call is counted just after its answer is sent: allow the last one a moment. */
	char *body = http_get(port, "/metrics");
	for (int i = 0; i < 50 && !strstr(body, "RevealSecret\",code=\"NOT_FOUND\""); i++) {
		free(body);
		usleep(50 * 1000);
		body = http_get(port, "/metrics");
	}
	ck_assert_ptr_nonnull(strstr(body, "HTTP/1.1 200 OK"));
	ck_assert_ptr_nonnull(strstr(body, "text/plain; version=0.0.4"));
	const char *want[] = {
	        "coffer_calls_total{method=\"/coffer.v1.Projects/CreateProject\",code=\"OK\"} ",
	        "coffer_calls_total{method=\"/coffer.v1.Secrets/"
	        "RevealSecret\",code=\"NOT_FOUND\"} ",
	        "coffer_call_duration_seconds_bucket{method=\"/coffer.v1.Projects/"
	        "CreateProject\",le=\"+Inf\"} ",
	        "coffer_call_duration_seconds_count{method=\"/coffer.v1.Projects/GetProject\"} ",
	        "coffer_errors_total{code=\"NOT_FOUND\"} ",
	        "coffer_db_connections{state=\"up\"} ",
	        "coffer_audit_backlog 0",
	        "coffer_keyring_active_term ",
	        "coffer_build_info{version=\"" COFFER_VERSION "\"} 1",
	        "# TYPE coffer_call_duration_seconds histogram",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(strstr(body, want[i]) != NULL, "missing %s", want[i]);
	ck_assert_ptr_null(strstr(body, "coffer_db_connections{state=\"up\"} 0\n"));
	free(body);
	body = http_get(port, "/other");
	ck_assert_ptr_nonnull(strstr(body, "404"));
	free(body);
}
END_TEST

TCase *tcase_health(void)
{
	TCase *tc = tcase_create("health");
	tcase_set_timeout(tc, 60);
	test_add(tc, health_and_unknown_methods);
	test_add(tc, metrics_after_traffic);
	return tc;
}
