/*
 * test_cache.c - the cache's coherence rules without a database (cache.h): a reader's offer is
 * refused when a newer revision was announced or its generation moved; announcements drop what is
 * older; a lost listener empties it; tokens are dropped by id and with their project; the byte
 * budget holds. And the job pool (workq.h): every job runs once, a full lane refuses at once, calls
 * go first and background work is never starved.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "cache.h"
#include "workq.h"

/* A set of n rows for project pid at revision rev, each with a 100-byte blob. */
static struct cached_rows *set_of(int64_t pid, int64_t rev, size_t n)
{
	struct cached_rows *s = cached_rows_new(n, n * 8, n * 100);
	ck_assert_ptr_nonnull(s);
	s->project_id = pid;
	s->revision = rev;
	uint8_t *room = cached_rows_room(s);
	for (size_t i = 0; i < n; i++) {
		snprintf((char *)room, 8, "S%zu", i);
		s->rows[i].name = s->names[i] = (const char *)room;
		room += 8;
		memset(room, (int)i, 100);
		s->rows[i].sealed = room;
		s->rows[i].sealed_len = 100;
		room += 100;
	}
	return s;
}

/* The revision cached for (p, main, live), or -1. */
static int64_t cached_rev(struct cache *c, const char *p)
{
	struct cached_rows *s = cache_rows_get(c, p, "main", 2);
	int64_t rev = s ? s->revision : -1;
	cached_rows_unref(s);
	return rev;
}

static void put(struct cache *c, uint64_t generation, const char *p, int64_t pid, int64_t rev)
{
	struct cached_rows *s = set_of(pid, rev, 3);
	cache_rows_put(c, generation, p, "main", 2, s);
	cached_rows_unref(s);
}

START_TEST(off_until_the_listener_listens)
{
	struct cache *c = NULL;
	ck_assert_int_eq(cache_new(1 << 20, &c), 0);
	ck_assert_uint_eq(cache_generation(c), 0);
	put(c, cache_generation(c), "p", 1, 5);
	ck_assert_int_eq(cached_rev(c, "p"), -1);
	cache_enable(c);
	put(c, cache_generation(c), "p", 1, 5);
	ck_assert_int_eq(cached_rev(c, "p"), 5);
	cache_free(c);
}
END_TEST

START_TEST(a_read_older_than_an_announcement_is_refused)
{
	struct cache *c = NULL;
	ck_assert_int_eq(cache_new(1 << 20, &c), 0);
	cache_enable(c);
	uint64_t generation = cache_generation(c); /* a reader starts its snapshot at revision 5 */
	cache_project_changed(c, 1, 6);            /* a write commits revision 6 meanwhile */
	put(c, generation, "p", 1, 5);             /* the reader offers what it read */
	ck_assert_int_eq(cached_rev(c, "p"), -1);
	put(c, generation, "p", 1, 6); /* a read that saw the write is kept */
	ck_assert_int_eq(cached_rev(c, "p"), 6);
	/* An announcement drops what is older, and only that project's. */
	put(c, generation, "q", 2, 3);
	cache_project_changed(c, 1, 7);
	ck_assert_int_eq(cached_rev(c, "p"), -1);
	ck_assert_int_eq(cached_rev(c, "q"), 3);
	/* A newer set replaces an older one; an older offer does not replace a newer one. */
	put(c, generation, "q", 2, 4);
	put(c, generation, "q", 2, 2);
	ck_assert_int_eq(cached_rev(c, "q"), 4);
	/* Deleted: gone, and no read of it is kept again; a new project of that name is. */
	cache_project_changed(c, 2, -1);
	ck_assert_int_eq(cached_rev(c, "q"), -1);
	put(c, cache_generation(c), "q", 2, 9);
	ck_assert_int_eq(cached_rev(c, "q"), -1);
	put(c, cache_generation(c), "q", 3, 1);
	ck_assert_int_eq(cached_rev(c, "q"), 1);
	cache_free(c);
}
END_TEST

START_TEST(a_lost_listener_empties_the_cache_and_old_readers_are_refused)
{
	struct cache *c = NULL;
	ck_assert_int_eq(cache_new(1 << 20, &c), 0);
	cache_enable(c);
	uint64_t before = cache_generation(c);
	put(c, before, "p", 1, 5);
	cache_disable(c);
	ck_assert_int_eq(cached_rev(c, "p"), -1);
	put(c, before, "p", 1, 5);
	ck_assert_int_eq(cached_rev(c, "p"), -1);
	cache_enable(c);
	ck_assert_uint_ne(cache_generation(c), before);
	/* A reader that started before the listener came back may have missed a change. */
	put(c, before, "p", 1, 5);
	ck_assert_int_eq(cached_rev(c, "p"), -1);
	put(c, cache_generation(c), "p", 1, 5);
	ck_assert_int_eq(cached_rev(c, "p"), 5);
	cache_keyring_changed(c);
	ck_assert_int_eq(cached_rev(c, "p"), -1);
	ck_assert(cache_keyring_stale(c));
	ck_assert(!cache_keyring_stale(c));
	cache_free(c);
}
END_TEST

START_TEST(tokens_are_dropped_by_id_and_with_their_project)
{
	struct cache *c = NULL;
	ck_assert_int_eq(cache_new(0, &c), 0);
	cache_enable(c);
	uint8_t h1[32] = {1}, h2[32] = {2}, h3[32] = {3};
	struct token t1 = {.id = "tok_1", .role = ROLE_RUNTIME},
	             t2 = {.id = "tok_2", .role = ROLE_RUNTIME},
	             t3 = {.id = "tok_3", .role = ROLE_ADMIN}, out;
	uint64_t generation = cache_generation(c);
	cache_token_put(c, generation, h1, &t1);
	cache_token_put(c, generation, h2, &t2);
	cache_token_put(c, generation, h3, &t3);
	ck_assert(cache_token_get(c, h1, &out));
	ck_assert_str_eq(out.id, "tok_1");
	/* A lookup that read the token before it was revoked must not keep it. */
	uint64_t reader = cache_generation(c);
	cache_token_changed(c, "tok_1");
	ck_assert(!cache_token_get(c, h1, &out));
	cache_token_put(c, reader, h1, &t1);
	ck_assert(!cache_token_get(c, h1, &out));
	/* A deleted project takes the tokens of projects with it; admin tokens stay. */
	cache_project_changed(c, 7, -1);
	ck_assert(!cache_token_get(c, h2, &out));
	ck_assert(cache_token_get(c, h3, &out));
	/* With a row budget of 0, rows are never kept. */
	put(c, cache_generation(c), "p", 1, 1);
	ck_assert_int_eq(cached_rev(c, "p"), -1);
	cache_free(c);
}
END_TEST

START_TEST(the_byte_budget_holds)
{
	struct cache *c = NULL;
	size_t budget = 64 * 1024;
	ck_assert_int_eq(cache_new(budget, &c), 0);
	cache_enable(c);
	struct cached_rows *held = NULL;
	for (int i = 0; i < 500; i++) {
		char p[16];
		snprintf(p, sizeof(p), "p%d", i);
		struct cached_rows *s = set_of(i + 1, 1, 10);
		cache_rows_put(c, cache_generation(c), p, "main", 2, s);
		if (i == 0)
			held = s; /* a reader keeps this one */
		else
			cached_rows_unref(s);
		struct cache_stats st;
		cache_stats(c, &st);
		ck_assert_uint_le(st.bytes, budget);
		ck_assert_uint_gt(st.sets, 0);
	}
	/* A set held by a reader outlives its eviction, and the cache. */
	ck_assert_int_eq(cached_rev(c, "p0"), -1);
	cache_free(c);
	ck_assert_str_eq(held->rows[9].name, "S9");
	cached_rows_unref(held);
}
END_TEST

static atomic_int ran;

static void count(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
}

static void block(void *arg)
{
	atomic_bool *go = arg;
	while (!atomic_load(go))
		usleep(1000);
}

START_TEST(jobs_run_once_and_a_full_queue_refuses)
{
	struct workq *q = NULL;
	ck_assert_int_eq(workq_new(3, 1000, &q), 0);
	atomic_store(&ran, 0);
	for (int i = 0; i < 500; i++)
		ck_assert_int_eq(
		        workq_submit(q, i % 2 ? WORKQ_CALLS : WORKQ_BACKGROUND, count, NULL), 0);
	workq_free(q); /* runs what is queued */
	ck_assert_int_eq(atomic_load(&ran), 500);
	ck_assert_int_eq(workq_new(1, 2, &q), 0);
	atomic_bool go = false;
	ck_assert_int_eq(workq_submit(q, WORKQ_CALLS, block, &go), 0);
	usleep(50 * 1000); /* the one thread is busy */
	ck_assert_int_eq(workq_submit(q, WORKQ_CALLS, count, NULL), 0);
	ck_assert_int_eq(workq_submit(q, WORKQ_CALLS, count, NULL), 0);
	ck_assert_int_eq(workq_submit(q, WORKQ_CALLS, count, NULL), -1); /* full: refused */
	/* Each lane has its own room. */
	ck_assert_int_eq(workq_submit(q, WORKQ_BACKGROUND, count, NULL), 0);
	ck_assert_uint_eq(workq_backlog(q), 3);
	atomic_store(&go, true);
	workq_free(q);
}
END_TEST

/* The order jobs ran in, one letter each. */
static char order[64];
static atomic_int n_order;

static void mark(void *arg)
{
	order[atomic_fetch_add(&n_order, 1)] = *(const char *)arg;
}

START_TEST(calls_go_before_background_work_which_never_starves)
{
	struct workq *q = NULL;
	ck_assert_int_eq(workq_new(1, 100, &q), 0);
	atomic_bool go = false;
	ck_assert_int_eq(workq_submit(q, WORKQ_CALLS, block, &go), 0);
	usleep(50 * 1000); /* the one thread is busy while both lanes fill */
	memset(order, 0, sizeof(order));
	atomic_store(&n_order, 0);
	static const char b = 'b', c = 'c';
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(workq_submit(q, WORKQ_BACKGROUND, mark, (void *)&b), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(workq_submit(q, WORKQ_CALLS, mark, (void *)&c), 0);
	atomic_store(&go, true);
	workq_free(q);
	/* Calls first, but background work gets a turn after every WORKQ_CALLS_PER_BACKGROUND. */
	ck_assert_str_eq(order, "ccccbccccbccb");
}
END_TEST

TCase *tcase_cache(void)
{
	TCase *tc = tcase_create("cache");
	test_add(tc, off_until_the_listener_listens);
	test_add(tc, a_read_older_than_an_announcement_is_refused);
	test_add(tc, a_lost_listener_empties_the_cache_and_old_readers_are_refused);
	test_add(tc, tokens_are_dropped_by_id_and_with_their_project);
	test_add(tc, the_byte_budget_holds);
	test_add(tc, jobs_run_once_and_a_full_queue_refuses);
	test_add(tc, calls_go_before_background_work_which_never_starves);
	return tc;
}
