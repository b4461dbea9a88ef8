/*
 * test_settings.c - cofferd's settings (server/daemon/settings.c): environment, then flags, and
 * the refusals of bad values and unknown flags.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "settings.h"

START_TEST(settings_precedence)
{
	struct settings cfg;
	setenv("COFFER_WORKERS", "7", 1);
	setenv("COFFER_LISTEN", "0.0.0.0:1", 1);
	ck_assert_int_eq(settings_from_env(&cfg), 0);
	ck_assert_int_eq(cfg.workers, 7);
	ck_assert_str_eq(cfg.listen, "0.0.0.0:1");
	ck_assert_int_eq(cfg.max_message_bytes, 4194304);
	ck_assert(!cfg.migrate);
	char *argv[] = {"cofferd", "--workers", "3", "--listen=127.0.0.1:9", "--migrate"};
	ck_assert_int_eq(settings_from_args(&cfg, 5, argv, 1), 0);
	ck_assert_int_eq(cfg.workers, 3);
	ck_assert_str_eq(cfg.listen, "127.0.0.1:9");
	ck_assert(cfg.migrate);
	char *bad1[] = {"cofferd", "--workers=-1"};
	char *bad2[] = {"cofferd", "--nope=1"};
	char *bad3[] = {"cofferd", "--workers"};
	char *bad4[] = {"cofferd", "--workers=12x"};
	ck_assert_int_eq(settings_from_args(&cfg, 2, bad1, 1), -1);
	ck_assert_int_eq(settings_from_args(&cfg, 2, bad2, 1), -1);
	ck_assert_int_eq(settings_from_args(&cfg, 2, bad3, 1), -1);
	ck_assert_int_eq(settings_from_args(&cfg, 2, bad4, 1), -1);
	settings_free(&cfg);
	setenv("COFFER_WORKERS", "many", 1);
	ck_assert_int_eq(settings_from_env(&cfg), -1);
	settings_free(&cfg);
	unsetenv("COFFER_WORKERS");
	unsetenv("COFFER_LISTEN");
}
END_TEST

TCase *tcase_settings(void)
{
	TCase *tc = tcase_create("settings");
	test_add(tc, settings_precedence);
	return tc;
}
