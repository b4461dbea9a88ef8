/*
 * test_dotenv.c - the CLI's .env reader (client/cli/dotenv.c), table-driven: the dialect of
 * docs/changes.md (comments, export, quotes, escapes, multi-line values, CRLF, empty values,
 * inline comments), what is refused (duplicates, unclosed quotes, text after a quote, lines
 * without a name), that errors name their line and never hold a value, and that what
 * `coffer export` writes reads back the same.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "dotenv.h"

struct want_pair {
	const char *name, *value;
	int line;
};

static const struct {
	const char *label;
	const char *text;
	struct want_pair want[4]; /* until a NULL name */
	const char *error;        /* NULL: must parse */
} cases[] = {
        {"plain", "A=1\nB=two\n", {{"A", "1", 1}, {"B", "two", 2}}, NULL},
        {"no final newline", "A=1", {{"A", "1", 1}}, NULL},
        {"comments and blank lines", "# top\n\n  # indented\nA=1\n\n", {{"A", "1", 4}}, NULL},
        {"export prefix", "export A=1\nexport\tB=2\n", {{"A", "1", 1}, {"B", "2", 2}}, NULL},
        {"a name that starts with export", "exported=1\n", {{"exported", "1", 1}}, NULL},
        {"spaces around =", "A = spaced value  \n", {{"A", "spaced value", 1}}, NULL},
        {"inline comment",
         "A=value # note\nB=x#not-a-comment\n",
         {{"A", "value", 1}, {"B", "x#not-a-comment", 2}},
         NULL},
        {"empty values", "A=\nB=\"\"\nC=''\n", {{"A", "", 1}, {"B", "", 2}, {"C", "", 3}}, NULL},
        {"a comment after the blanks that follow =",
         "A=   # later\nB=#x\nC= \t# c\n",
         {{"A", "", 1}, {"B", "#x", 2}, {"C", "", 3}},
         NULL},
        {"double quotes and escapes",
         "A=\"a\\nb\\t\\\"q\\\" \\\\ \\$x \\`c\\` \\d\"\n",
         {{"A", "a\nb\t\"q\" \\ $x `c` \\d", 1}},
         NULL},
        {"single quotes are literal", "A='a\\nb $x \"q\"'\n", {{"A", "a\\nb $x \"q\"", 1}}, NULL},
        {"a quoted value then a comment", "A=\"v\"   # c\n", {{"A", "v", 1}}, NULL},
        {"multi-line values",
         "A=\"line1\nline2\"\nB='x\ny'\nC=3\n",
         {{"A", "line1\nline2", 1}, {"B", "x\ny", 3}, {"C", "3", 5}},
         NULL},
        {"CRLF",
         "A=1\r\nB=\"x\r\ny\"\r\nC=3\r\n",
         {{"A", "1", 1}, {"B", "x\ny", 2}, {"C", "3", 4}},
         NULL},
        {"non-ASCII", "A=caf\xc3\xa9 \xe2\x82\xac\n", {{"A", "caf\xc3\xa9 \xe2\x82\xac", 1}}, NULL},
        {"dots and dashes in names", "a.b-c=1\n", {{"a.b-c", "1", 1}}, NULL},
        {"what coffer export writes",
         "A=\"q\\\"\\\\\\$\\`\\n\\r\"\n",
         {{"A", "q\"\\$`\n\r", 1}},
         NULL},
        {"a duplicate is refused",
         "A=1\nB=2\nA=secret-canary\n",
         {{NULL}},
         "line 3: A is already set on line 1"},
        {"an unclosed double quote",
         "A=1\nB=\"secret-canary\n",
         {{NULL}},
         "line 2: the double quote is never closed"},
        {"an unclosed single quote",
         "B='secret-canary",
         {{NULL}},
         "line 1: the single quote is never closed"},
        {"text after the closing quote",
         "A=\"secret\"-canary\n",
         {{NULL}},
         "line 1: unexpected text after the closing quote"},
        {"no =", "A=1\nsecret-canary\n", {{NULL}}, "line 2: expected NAME=value"},
        {"no name", "=secret-canary\n", {{NULL}}, "line 1: expected NAME=value"},
        {"a name with a space", "MY KEY=secret-canary\n", {{NULL}}, "line 1: expected NAME=value"},
        {"a name that starts with a digit",
         "1A=secret-canary\n",
         {{NULL}},
         "line 1: expected NAME=value"},
};

START_TEST(dialect_table)
{
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct env_pair *pairs = NULL;
		size_t n = 0;
		char err[320];
		int rc = dotenv_parse(cases[k].text, strlen(cases[k].text), &pairs, &n, err,
		                      sizeof(err));
		if (cases[k].error) {
			ck_assert_msg(rc != 0, "%s: parsed", cases[k].label);
			ck_assert_msg(strstr(err, cases[k].error) == err, "%s: %s", cases[k].label,
			              err);
			ck_assert_msg(strstr(err, "canary") == NULL,
			              "%s: the error holds a value: %s", cases[k].label, err);
			ck_assert_ptr_null(pairs);
			ck_assert_uint_eq(n, 0);
			continue;
		}
		ck_assert_msg(rc == 0, "%s: %s", cases[k].label, err);
		size_t want = 0;
		while (want < 4 && cases[k].want[want].name)
			want++;
		ck_assert_msg(n == want, "%s: %zu pairs, want %zu", cases[k].label, n, want);
		for (size_t i = 0; i < n; i++) {
			ck_assert_msg(strcmp(pairs[i].name, cases[k].want[i].name) == 0,
			              "%s: name %s", cases[k].label, pairs[i].name);
			ck_assert_msg(strcmp(pairs[i].value, cases[k].want[i].value) == 0,
			              "%s: %s=[%s]", cases[k].label, pairs[i].name, pairs[i].value);
			ck_assert_msg(pairs[i].line == cases[k].want[i].line, "%s: %s on line %d",
			              cases[k].label, pairs[i].name, pairs[i].line);
		}
		dotenv_free(pairs, n);
	}
}
END_TEST

START_TEST(a_nul_byte_is_refused_with_its_line)
{
	static const char text[] = "A=1\nB=abc\0secret-canary\nC=3\n";
	struct env_pair *pairs = NULL;
	size_t n = 0;
	char err[320];
	ck_assert_int_ne(dotenv_parse(text, sizeof(text) - 1, &pairs, &n, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "line 2: a NUL byte is not allowed in a .env file");
	ck_assert_ptr_null(pairs);
	ck_assert_uint_eq(n, 0);
}
END_TEST

TCase *tcase_dotenv(void)
{
	TCase *tc = tcase_create("dotenv");
	test_add(tc, dialect_table);
	test_add(tc, a_nul_byte_is_refused_with_its_line);
	return tc;
}
