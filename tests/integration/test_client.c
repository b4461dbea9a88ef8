/*
 * test_client.c - libcoffer's high-level API against the real server: resolve into a snapshot,
 * read it, render templates; and the error paths: server down, deadline, not found, and a retry
 * that outlasts a server's start.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_run.h"
#include "helpers.h"

static coffer_client *client_for(const char *addr, int timeout_ms, int retries)
{
	coffer_options o;
	coffer_options_init(&o);
	o.target = addr;
	o.timeout_ms = timeout_ms;
	o.max_retries = retries;
	coffer_client *c = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_client_new(&o, &c, &err), 0);
	return c;
}

/* A loopback port nothing listens on (bound, then released). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

START_TEST(resolve_snapshot_and_render)
{
	const char *p = uniq("client");
	create_project(p);
	must_create_secret(p, "API_KEY", "sk-live-123", 0);
	must_create_secret(p, "DB_URL", "postgres://db/app",
	                   COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
	env_create(p, "staging");
	coffer_error err;
	ck_assert_int_eq(set_override(p, "staging", 1, "API_KEY", "sk-test-456", 0, &err), 0);

	coffer_client *c = client_for(target, 5000, 2);
	coffer_snapshot *s = NULL;
	ck_assert_int_eq(coffer_resolve(c, p, "staging", COFFER_VERSION_DRAFT, &s, &err), 0);
	ck_assert_uint_eq(coffer_snapshot_count(s), 2);
	ck_assert_str_eq(coffer_snapshot_name(s, 0), "API_KEY");
	ck_assert_str_eq(coffer_snapshot_name(s, 1), "DB_URL");
	ck_assert_ptr_null(coffer_snapshot_name(s, 2));
	ck_assert_str_eq(coffer_snapshot_get(s, "API_KEY"), "sk-test-456");
	ck_assert_str_eq(coffer_snapshot_get(s, "DB_URL"), "postgres://db/app");
	ck_assert_ptr_null(coffer_snapshot_get(s, "API"));
	ck_assert_ptr_null(coffer_snapshot_get(s, "API_KEYS"));
	ck_assert_int_eq(coffer_snapshot_revision(s), project_revision(p));

	static const struct {
		const char *tmpl, *want;
		int code;
	} cases[] = {
	        {"key={secret.API_KEY}", "key=sk-test-456", 0},
	        {"{secret.API_KEY}{secret.DB_URL}", "sk-test-456postgres://db/app", 0},
	        {"{{secret.API_KEY}", "{secret.API_KEY}", 0},
	        {"{{{secret.API_KEY}}", "{sk-test-456}", 0},
	        {"json {\"a\": 1} {", "json {\"a\": 1} {", 0},
	        {"", "", 0},
	        {"no references", "no references", 0},
	        {"{secret.NOPE}", NULL, 5},
	        {"x {secret.API_KEY", NULL, 3},
	        {"{secret.}", NULL, 5},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		coffer_error e = {0};
		int rc = coffer_snapshot_render(s, cases[i].tmpl, &out, &e);
		if (cases[i].code == 0) {
			ck_assert_msg(rc == 0, "%s: %s", cases[i].tmpl, e.message);
			ck_assert_str_eq(out, cases[i].want);
			free(out);
		} else {
			ck_assert_int_lt(rc, 0);
			ck_assert_ptr_null(out);
			ck_assert_int_eq(e.code, cases[i].code);
			ck_assert_ptr_null(strstr(e.message, "sk-"));
		}
	}
	coffer_error e = {0};
	char *out = NULL;
	ck_assert_int_lt(coffer_snapshot_render(s, "{secret.NOPE}", &out, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.message, "NOPE"));
	coffer_snapshot_free(s);
	coffer_snapshot_free(NULL);

	/* not found is answered at once, never retried into the deadline */
	ck_assert_int_lt(coffer_resolve(c, uniq("missing"), "main", COFFER_VERSION_LIVE, &s, &err),
	                 0);
	ck_assert_int_eq(err.code, 5);
	ck_assert_ptr_null(s);
	ck_assert_int_lt(coffer_resolve(c, p, "prod", COFFER_VERSION_LIVE, &s, &err), 0);
	ck_assert_int_eq(err.code, 5);
	ck_assert_ptr_nonnull(strstr(err.message, "prod"));
	coffer_client_free(c);
	coffer_client_free(NULL);
}
END_TEST

START_TEST(server_down_is_unavailable)
{
	char addr[32];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
	coffer_client *c = client_for(addr, 1500, 2);
	coffer_snapshot *s = NULL;
	coffer_error err;
	ck_assert_int_lt(coffer_resolve(c, "p", "main", COFFER_VERSION_LIVE, &s, &err), 0);
	ck_assert_msg(err.code == 14, "got %s: %s", coffer_code_name(err.code), err.message);
	coffer_client_free(c);
}
END_TEST

START_TEST(deadline_is_deadline_exceeded)
{
	const char *p = uniq("slow");
	create_project(p);
	must_create_secret(p, "X", "x", 0);
	PQclear(sql("BEGIN", 0, NULL));
	PQclear(sql("LOCK TABLE secrets IN ACCESS EXCLUSIVE MODE", 0, NULL));
	coffer_client *c = client_for(target, 400, 3);
	coffer_snapshot *s = NULL;
	coffer_error err;
	int rc = coffer_resolve(c, p, "main", COFFER_VERSION_LIVE, &s, &err);
	PQclear(sql("ROLLBACK", 0, NULL));
	ck_assert_int_lt(rc, 0);
	ck_assert_msg(err.code == 4, "got %s: %s", coffer_code_name(err.code), err.message);
	coffer_client_free(c);
}
END_TEST

struct late_server {
	int port;           /* where to listen */
	struct server *srv; /* started after a pause */
};

static void *start_late(void *arg)
{
	struct late_server *l = arg;
	usleep(700 * 1000);
	struct settings c2 = cfg;
	char listen[32];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", l->port);
	c2.listen = listen;
	struct cof_err e = {0};
	if (server_start(&c2, 5, &l->srv, &e) != 0)
		fprintf(stderr, "late server: %s\n", e.msg);
	return NULL;
}

START_TEST(retries_outlast_a_server_start)
{
	const char *p = uniq("retry");
	create_project(p);
	must_create_secret(p, "X", "x-value", 0);
	struct late_server l = {.port = free_port()};
	char addr[32];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", l.port);
	/* Without retries the first refusal is final. */
	coffer_client *once = client_for(addr, 8000, 0);
	coffer_snapshot *s = NULL;
	coffer_error err;
	ck_assert_int_lt(coffer_resolve(once, p, "main", COFFER_VERSION_LIVE, &s, &err), 0);
	ck_assert_int_eq(err.code, 14);
	coffer_client_free(once);
	/* With retries the call waits out the server's start. */
	pthread_t t;
	pthread_create(&t, NULL, start_late, &l);
	coffer_client *c = client_for(addr, 8000, 12);
	int rc = coffer_resolve(c, p, "main", COFFER_VERSION_LIVE, &s, &err);
	pthread_join(t, NULL);
	ck_assert_msg(rc == 0, "%s: %s", coffer_code_name(err.code), err.message);
	ck_assert_str_eq(coffer_snapshot_get(s, "X"), "x-value");
	coffer_snapshot_free(s);
	coffer_client_free(c);
	server_stop(l.srv, 1);
}
END_TEST

TCase *tcase_client(void)
{
	TCase *tc = tcase_create("client");
	tcase_set_timeout(tc, 60);
	test_add(tc, resolve_snapshot_and_render);
	test_add(tc, server_down_is_unavailable);
	test_add(tc, deadline_is_deadline_exceeded);
	test_add(tc, retries_outlast_a_server_start);
	return tc;
}
