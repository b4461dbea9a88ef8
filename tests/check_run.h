/*
 * check_run.h - what the two Check runners (tests/unit, tests/integration) share: their tcases
 * are listed once, in the suite's suites.h, and one tcase or one test runs alone by name:
 *
 *     test_integration                       every tcase
 *     test_integration watch                 the tcase "watch"
 *     test_integration watch.resumes_after_a_restart   one test of it
 *     test_integration --list                every TCASE.TEST, one per line
 *
 * ctest makes one entry per tcase from the same list (tests/CMakeLists.txt).
 */
#ifndef COFFER_TEST_CHECK_RUN_H
#define COFFER_TEST_CHECK_RUN_H

#include <check.h>
#include <stdbool.h>

/* One tcase of a suite: its name (the ctest entry is SUITE.NAME) and its maker. */
struct test_case {
	const char *name;     /* the tcase's name, as tcase_create was given */
	TCase *(*make)(void); /* builds it, adding its tests with test_add */
};

/* Adds test t to tc, unless one test was chosen (test_run's argument TCASE.TEST) and t is not it.
 */
void test_add(TCase *tc, const TTest *t);

/*
 * Runs the suite named suite made of the n cases, as argv asks (see above); fork false runs every
 * test in this process, true in a child each unless CK_FORK=no (Check's switch, for gdb). Returns
 * the exit status: 0 when every test that ran passed and at least one ran; 2 on a name that matches
 * no tcase or test.
 */
int test_run(const char *suite, const struct test_case *cases, int n, bool fork, int argc,
             char **argv);

#endif
