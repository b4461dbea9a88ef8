/*
 * test_rules.c - the domain's pure rules, without a database: which row wins in a resolve, which
 * names a resolve returns and which it reports missing, what a merge changes, and the model's
 * names.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "merge_plan.h"
#include "model.h"
#include "resolve_rules.h"

START_TEST(override_wins_over_default)
{
	const struct resolve_candidate c[] = {
	        {"A", false}, {"B", false}, {"B", true}, {"C", true}, {"D", false},
	};
	size_t win[5];
	size_t n = resolve_pick(c, 5, win);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(win[0], 0); /* A: its default */
	ck_assert_uint_eq(win[1], 2); /* B: the override, not the default before it */
	ck_assert_uint_eq(win[2], 3); /* C: an override alone */
	ck_assert_uint_eq(win[3], 4);
	/* the override wins whichever comes first */
	const struct resolve_candidate d[] = {{"X", true}, {"X", false}};
	ck_assert_uint_eq(resolve_pick(d, 2, win), 1);
	ck_assert_uint_eq(win[0], 0);
	ck_assert_uint_eq(resolve_pick(d, 0, win), 0);
}
END_TEST

START_TEST(select_names_and_missing)
{
	const char *all[] = {"API_KEY", "DB_PASSWORD", "DB_USER"};
	size_t take[3];
	const char *missing[5];
	size_t n_take = 0, n_missing = 0;
	ck_assert_int_eq(resolve_select(all, 3, NULL, 0, take, &n_take, missing, &n_missing), 0);
	ck_assert_uint_eq(n_take, 3);
	ck_assert_uint_eq(n_missing, 0);
	const char *asked[] = {"DB_USER", "NOPE", "API_KEY", "NOPE", "DB_USER"};
	ck_assert_int_eq(resolve_select(all, 3, asked, 5, take, &n_take, missing, &n_missing), 0);
	ck_assert_uint_eq(n_take, 2); /* ascending, each once */
	ck_assert_uint_eq(take[0], 0);
	ck_assert_uint_eq(take[1], 2);
	ck_assert_uint_eq(n_missing, 1); /* in the order first asked, once */
	ck_assert_str_eq(missing[0], "NOPE");
}
END_TEST

static struct merge_entry entry(const char *secret, int version, const char *value, size_t ref)
{
	return (struct merge_entry){.secret = secret,
	                            .version = version,
	                            .value = value,
	                            .len = strlen(value),
	                            .ref = ref,
	                            .row_id = 100 + (int64_t)ref};
}

/* A restricted override: row `row`, copied from `origin` (0: written directly). */
static struct merge_entry restricted(const char *secret, const char *value, int64_t row,
                                     int64_t origin)
{
	return (struct merge_entry){.secret = secret,
	                            .version = VERSION_LIVE,
	                            .value = value,
	                            .len = value ? strlen(value) : 0,
	                            .restricted = true,
	                            .row_id = row,
	                            .origin_id = origin};
}

START_TEST(merge_plan_never_compares_restricted_plaintexts)
{
	/* Equal plaintexts, but the target's value was written on its own: a dry run must not say
	 * "equal", or it would confirm a guess of a value the caller may not read. */
	struct merge_entry guess = restricted("DB_PASSWORD", "hunter2", 7, 0);
	struct merge_entry secret = restricted("DB_PASSWORD", "hunter2", 3, 0);
	struct merge_change ch[2];
	int live = 0;
	ck_assert_uint_eq(merge_plan(&guess, 1, &secret, 1, ch, &live), 1);
	ck_assert_int_eq(ch[0].kind, CHANGE_CHANGED);
	/* and the target's plaintext is not even needed */
	secret.value = NULL;
	ck_assert_uint_eq(merge_plan(&guess, 1, &secret, 1, ch, &live), 1);
	ck_assert_int_eq(ch[0].kind, CHANGE_CHANGED);
	/* the target holds a copy of the source's row (an earlier merge): unchanged */
	struct merge_entry copied = restricted("DB_PASSWORD", NULL, 9, 7);
	ck_assert_uint_eq(merge_plan(&guess, 1, &copied, 1, ch, &live), 0);
	/* both are copies of the same original write: unchanged */
	struct merge_entry src_copy = restricted("DB_PASSWORD", "hunter2", 12, 5);
	struct merge_entry dst_copy = restricted("DB_PASSWORD", NULL, 13, 5);
	ck_assert_uint_eq(merge_plan(&src_copy, 1, &dst_copy, 1, ch, &live), 0);
	/* a different original with the same text: changed */
	struct merge_entry other_copy = restricted("DB_PASSWORD", NULL, 14, 6);
	ck_assert_uint_eq(merge_plan(&src_copy, 1, &other_copy, 1, ch, &live), 1);
	/* masked values are compared by what they say (an editor may reveal them anyway) */
	struct merge_entry a = entry("API_KEY", VERSION_DRAFT, "same", 0);
	struct merge_entry b = entry("API_KEY", VERSION_DRAFT, "same", 1);
	ck_assert_uint_eq(merge_plan(&a, 1, &b, 1, ch, &live), 0);
}
END_TEST

START_TEST(merge_plan_adds_changes_and_removes)
{
	/* sorted by (secret, version) */
	struct merge_entry src[] = {
	        entry("A", VERSION_DRAFT, "a1", 0), entry("A", VERSION_LIVE, "a2", 1),
	        entry("B", VERSION_LIVE, "same", 2), entry("C", VERSION_DRAFT, "new", 3)};
	struct merge_entry dst[] = {entry("A", VERSION_LIVE, "old", 0),
	                            entry("B", VERSION_LIVE, "same", 1),
	                            entry("D", VERSION_DRAFT, "gone", 2)};
	struct merge_change ch[7];
	int live = 0;
	size_t n = merge_plan(src, 4, dst, 3, ch, &live);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(live, 2); /* the source's live overrides */
	ck_assert_str_eq(ch[0].secret, "A");
	ck_assert_int_eq(ch[0].version, VERSION_DRAFT);
	ck_assert_int_eq(ch[0].kind, CHANGE_ADDED);
	ck_assert_ptr_null(ch[0].to);
	ck_assert_int_eq(ch[1].kind, CHANGE_CHANGED);
	ck_assert_int_eq(ch[1].version, VERSION_LIVE);
	ck_assert_uint_eq(ch[1].from->ref, 1);
	ck_assert_uint_eq(ch[1].to->ref, 0);
	ck_assert_str_eq(ch[2].secret, "C"); /* B is equal: no change */
	ck_assert_int_eq(ch[2].kind, CHANGE_ADDED);
	ck_assert_str_eq(ch[3].secret, "D");
	ck_assert_int_eq(ch[3].kind, CHANGE_REMOVED);
	ck_assert_ptr_null(ch[3].from);
	/* nothing into nothing */
	ck_assert_uint_eq(merge_plan(src, 0, dst, 0, ch, &live), 0);
	ck_assert_int_eq(live, 0);
}
END_TEST

START_TEST(model_names)
{
	ck_assert_str_eq(version_name(VERSION_DRAFT), "draft");
	ck_assert_str_eq(version_name(VERSION_LIVE), "live");
	ck_assert_str_eq(version_name(VERSION_DEFAULT), "default");
	ck_assert_str_eq(version_name(7), "?");
	ck_assert_str_eq(role_name(ROLE_RUNTIME), "runtime");
	ck_assert_str_eq(role_name(0), "none");
	ck_assert(version_is_env(VERSION_DRAFT) && version_is_env(VERSION_LIVE));
	ck_assert(!version_is_env(VERSION_DEFAULT) && !version_is_env(3));
	ck_assert_int_ne(version_bit(VERSION_DRAFT), version_bit(VERSION_LIVE));
}
END_TEST

TCase *tcase_rules(void)
{
	TCase *tc = tcase_create("rules");
	test_add(tc, override_wins_over_default);
	test_add(tc, select_names_and_missing);
	test_add(tc, merge_plan_adds_changes_and_removes);
	test_add(tc, merge_plan_never_compares_restricted_plaintexts);
	test_add(tc, model_names);
	return tc;
}
