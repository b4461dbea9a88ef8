/*
 * test_validate.c - the domain's input rules (server/domain/validate.c): slugs, secret names,
 * UTF-8, value and description sizes, page sizes and page tokens.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <unistd.h>

#include "check_run.h"
#include "validate.h"

static const struct {
	const char *s;
	bool ok;
} slugs[] = {
        {"a", true},
        {"support-bot", true},
        {"p1", true},
        {"a-", true},
        {"", false},
        {"1abc", false},
        {"-a", false},
        {"Abc", false},
        {"a_b", false},
        {"a.b", false},
        {"a b", false},
        {"é", false},
        {"a23456789012345678901234567890123456789012345678901234567890123", true},   /* 63 */
        {"a234567890123456789012345678901234567890123456789012345678901234", false}, /* 64 */
};

START_TEST(slug_rules)
{
	for (size_t i = 0; i < sizeof(slugs) / sizeof(slugs[0]); i++)
		ck_assert_msg(validate_slug(slugs[i].s) == slugs[i].ok, "slug \"%s\"", slugs[i].s);
	ck_assert(!validate_slug(NULL));
}
END_TEST

START_TEST(secret_name_rules)
{
	const char *good[] = {"API_KEY", "_x", "a", "A1", "db_password_2"};
	const char *bad[] = {"", "1A", "API-KEY", "API KEY", "a.b", "ключ", "A$"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(validate_secret_name(good[i]), "%s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!validate_secret_name(bad[i]), "%s", bad[i]);
	char n[130];
	memset(n, 'A', sizeof(n));
	n[128] = '\0';
	ck_assert(validate_secret_name(n));
	n[128] = 'A';
	n[129] = '\0';
	ck_assert(!validate_secret_name(n));
}
END_TEST

/* validate.c implements the rules by hand; the patterns (coffer_limits.h, quoted by docs/api.md)
 * are what the API states. They agree on the edge cases and on 20,000 random strings over an
 * alphabet that mixes what each rule takes and what it does not. */
static void rule_agrees(const char *pattern, bool (*check)(const char *))
{
	regex_t re;
	ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	static const char alphabet[] = "abzAZ09_-.é ";
	unsigned seed = 7;
	char s[160];
	for (int i = 0; i < 20000; i++) {
		int len = (int)(rand_r(&seed) % 140);
		for (int k = 0; k < len; k++)
			s[k] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
		s[len] = '\0';
		if (i % 4 == 0) /* mostly well-formed, near the length limits */
			for (int k = 0; k < len; k++)
				s[k] = k == 0 ? 'a' : "a9_-"[rand_r(&seed) % 4];
		bool want = regexec(&re, s, 0, NULL, 0) == 0;
		ck_assert_msg(check(s) == want, "\"%s\": %d, the pattern says %d", s, check(s),
		              want);
	}
	regfree(&re);
}

START_TEST(rules_are_the_patterns)
{
	rule_agrees(COFFER_RULE_SLUG, validate_slug);
	rule_agrees(COFFER_RULE_SECRET_NAME, validate_secret_name);
}
END_TEST

START_TEST(utf8_rules)
{
	ck_assert(validate_utf8("plain", 5));
	ck_assert(validate_utf8("h\xc3\xa9", 3));         /* é */
	ck_assert(validate_utf8("\xe2\x82\xac", 3));      /* € */
	ck_assert(validate_utf8("\xf0\x9f\x94\x91", 4));  /* 🔑 */
	ck_assert(validate_utf8("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
	ck_assert(!validate_utf8("\xc0\x80", 2));         /* overlong NUL */
	ck_assert(!validate_utf8("\xe0\x80\xaf", 3));     /* overlong / */
	ck_assert(!validate_utf8("\xed\xa0\x80", 3));     /* surrogate */
	ck_assert(!validate_utf8("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	ck_assert(!validate_utf8("\xc3", 1));             /* truncated */
	ck_assert(!validate_utf8("\xc3\x28", 2));         /* bad continuation */
	ck_assert(!validate_utf8("\xff", 1));
	ck_assert(!validate_utf8("\x80", 1));
}
END_TEST

START_TEST(value_and_description_sizes)
{
	char *v = malloc(LIMIT_VALUE_BYTES + 2);
	memset(v, 'x', LIMIT_VALUE_BYTES + 1);
	v[LIMIT_VALUE_BYTES] = '\0';
	ck_assert(validate_value(v));
	v[LIMIT_VALUE_BYTES] = 'x';
	v[LIMIT_VALUE_BYTES + 1] = '\0';
	ck_assert(!validate_value(v));
	ck_assert(validate_value(""));
	ck_assert(!validate_value("\xc3\x28"));
	v[LIMIT_DESCRIPTION_BYTES] = '\0';
	ck_assert(validate_description(v));
	v[LIMIT_DESCRIPTION_BYTES] = 'x';
	v[LIMIT_DESCRIPTION_BYTES + 1] = '\0';
	ck_assert(!validate_description(v));
	free(v);
}
END_TEST

START_TEST(page_sizes)
{
	int n = -5;
	ck_assert(validate_page_size(0, &n) && n == 100);
	ck_assert(validate_page_size(1, &n) && n == 1);
	ck_assert(validate_page_size(1000, &n) && n == 1000);
	ck_assert(!validate_page_size(1001, &n));
	ck_assert(!validate_page_size(-1, &n));
}
END_TEST

START_TEST(page_tokens)
{
	char tok[300], out[130];
	page_token_encode("support-bot", tok, sizeof(tok));
	ck_assert(page_token_decode(tok, out, sizeof(out)));
	ck_assert_str_eq(out, "support-bot");
	ck_assert(page_token_decode("", out, sizeof(out)));
	ck_assert_str_eq(out, "");
	const char *bad[] = {"x", "p1.", "p1.z1", "p1.6", "p2.61", "p1.00", "P1.61"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!page_token_decode(bad[i], out, sizeof(out)), "%s", bad[i]);
	char small[3];
	ck_assert(!page_token_decode(tok, small, sizeof(small)));
}
END_TEST

TCase *tcase_validate(void)
{
	TCase *tc = tcase_create("validate");
	test_add(tc, slug_rules);
	test_add(tc, secret_name_rules);
	test_add(tc, rules_are_the_patterns);
	test_add(tc, utf8_rules);
	test_add(tc, value_and_description_sizes);
	test_add(tc, page_sizes);
	test_add(tc, page_tokens);
	return tc;
}
