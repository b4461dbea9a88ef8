/*
 * main.c - the unit suite's runner (Check, each test in a child, no database): the tcases of
 * suites.h, all or the one the command line names (check_run.h).
 */
#include "check_run.h"

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
	return test_run("unit", cases, (int)(sizeof(cases) / sizeof(cases[0])), true, argc, argv);
}
