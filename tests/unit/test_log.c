/*
 * test_log.c - the log (server/obs/log.c): JSON escaping and level names.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "log.h"

START_TEST(log_escaping)
{
	char out[64] = "";
	log_json_escape(out, sizeof(out), "a\"b\\c\nd\x01");
	ck_assert_str_eq(out, "a\\\"b\\\\c\\u000ad\\u0001");
	enum log_level l;
	ck_assert(log_parse_level("warn", &l) && l == LOG_WARN);
	ck_assert(!log_parse_level("loud", &l));
}
END_TEST

TCase *tcase_log(void)
{
	TCase *tc = tcase_create("log");
	test_add(tc, log_escaping);
	return tc;
}
