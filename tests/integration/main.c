/*
 * main.c - the integration suite's runner: one cofferd in this process over the test PostgreSQL
 * (COFFER_TEST_DATABASE_URL, COFFER_TEST_ROOT_KEY_FILE; `scripts/dev db` prints them), a channel
 * to it and a libpq connection, then the tcases of suites.h, all or the one the command line names
 * (check_run.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "helpers.h"

struct settings cfg;
struct server *srv;
char target[64];
coffer_channel *ch;
PGconn *admin;

#define SUITE(name) TCase *tcase_##name(void);
#include "suites.h"
#undef SUITE

static const struct test_case cases[] = {
#define SUITE(name) {#name, tcase_##name},
#include "suites.h"
#undef SUITE
};

int main(int argc, char **argv)
{
	int n = (int)(sizeof(cases) / sizeof(cases[0]));
	if (argc > 1 && strcmp(argv[1], "--list") == 0)
		return test_run("integration", cases, n, false, argc, argv);
	const char *url = getenv("COFFER_TEST_DATABASE_URL");
	const char *key = getenv("COFFER_TEST_ROOT_KEY_FILE");
	if (url == NULL || key == NULL) {
		fprintf(stderr,
		        "COFFER_TEST_DATABASE_URL and COFFER_TEST_ROOT_KEY_FILE must be set "
		        "(scripts/dev db prints them)\n");
		return EXIT_FAILURE;
	}
	if (settings_from_env(&cfg) != 0)
		return EXIT_FAILURE;
	free(cfg.database_url);
	free(cfg.root_key_file);
	cfg.database_url = strdup(url);
	cfg.root_key_file = strdup(key);
	free(cfg.listen);
	cfg.listen = strdup("127.0.0.1:0");
	cfg.migrate = true;
	/* The domain suites run without tokens; test_access.c starts a server that checks them. */
	cfg.insecure_no_auth = true;
	free(cfg.metrics_listen);
	cfg.metrics_listen = strdup("127.0.0.1:0"); /* several servers run in this process */
	cfg.workers = 4;
	/* The access suites make many calls without a valid token from 127.0.0.1; the limit on them
	 * is tested on a server of its own (test_hardening.c). */
	cfg.unauthenticated_limit = 1000000;
	struct cof_err e = {0};
	if (server_global_init() != 0 || server_start(&cfg, 10, &srv, &e) != 0) {
		fprintf(stderr, "cannot start cofferd: %s %s\n", e.msg, e.detail);
		return EXIT_FAILURE;
	}
	snprintf(target, sizeof(target), "127.0.0.1:%d", server_port(srv));
	coffer_channel_options o = {.target = target, .timeout_ms = 20000};
	coffer_error err;
	if (coffer_channel_new(&o, &ch, &err) != 0)
		return EXIT_FAILURE;
	admin = PQconnectdb(url);
	if (PQstatus(admin) != CONNECTION_OK)
		return EXIT_FAILURE;

	int rc = test_run("integration", cases, n, false, argc, argv);
	access_tests_cleanup();

	PQfinish(admin);
	coffer_channel_free(ch);
	server_stop(srv, 5);
	server_global_shutdown();
	settings_free(&cfg);
	return rc;
}
