/* check_run.c - choosing and running tcases by name (see check_run.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

/* The one test asked for (NULL: all), and whether test_add has met it. */
static const char *only_test;
static bool only_test_seen;
/* --list: the tcase being made, whose tests test_add prints instead of adding. */
static const char *listing;

void test_add(TCase *tc, const TTest *t)
{
	if (listing != NULL) {
		printf("%s.%s\n", listing, t->name);
		return;
	}
	if (only_test != NULL && strcmp(only_test, t->name) != 0)
		return;
	only_test_seen = true;
	tcase_add_test(tc, t);
}

static int usage(const char *suite, const struct test_case *cases, int n, const char *bad)
{
	fprintf(stderr, "test_%s: no tcase \"%s\"; the tcases are:", suite, bad);
	for (int i = 0; i < n; i++)
		fprintf(stderr, " %s", cases[i].name);
	fprintf(stderr, "\n(usage: test_%s [--list | TCASE | TCASE.TEST])\n", suite);
	return 2;
}

int test_run(const char *suite, const struct test_case *cases, int n, bool fork, int argc,
             char **argv)
{
	const char *want = argc > 1 ? argv[1] : NULL;
	if (want != NULL && strcmp(want, "--list") == 0) {
		Suite *s = suite_create(suite);
		for (int i = 0; i < n; i++) {
			listing = cases[i].name;
			suite_add_tcase(s, cases[i].make());
		}
		srunner_free(srunner_create(s));
		return 0;
	}
	char tcase[128] = "";
	if (want != NULL) {
		const char *dot = strchr(want, '.');
		size_t len = dot ? (size_t)(dot - want) : strlen(want);
		if (len >= sizeof(tcase))
			return usage(suite, cases, n, want);
		memcpy(tcase, want, len);
		tcase[len] = '\0';
		only_test = dot ? dot + 1 : NULL;
	}
	bool found = false;
	for (int i = 0; i < n; i++)
		found = found || tcase[0] == '\0' || strcmp(tcase, cases[i].name) == 0;
	if (!found)
		return usage(suite, cases, n, tcase);
	Suite *s = suite_create(suite);
	for (int i = 0; i < n; i++)
		if (tcase[0] == '\0' || strcmp(tcase, cases[i].name) == 0)
			suite_add_tcase(s, cases[i].make());
	SRunner *sr = srunner_create(s);
	if (only_test != NULL && !only_test_seen) {
		fprintf(stderr, "test_%s: the tcase %s has no test \"%s\"\n", suite, tcase,
		        only_test);
		srunner_free(sr);
		return 2;
	}
	/* Forking (the default) follows CK_FORK, so CK_FORK=no runs a unit test under gdb. */
	if (!fork)
		srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int ran = srunner_ntests_run(sr);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (ran == 0) {
		fprintf(stderr, "test_%s: no test ran\n", suite);
		return 1;
	}
	return failed ? 1 : 0;
}
