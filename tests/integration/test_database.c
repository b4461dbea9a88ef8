/*
 * test_database.c - what a database that misbehaves does to a replica. A server that hangs (the
 * relay stops forwarding without closing anything, as a frozen primary or a partition): the cache
 * is off as soon as the listener's ping goes unanswered, readiness says NOT_SERVING, calls end
 * within their deadline, and the replica still stops within its grace; with a multi-host URL the
 * next host takes over without a restart, and a replica whose first host hangs at start-up
 * reaches the next. A write answered DEADLINE_EXCEEDED never commits afterwards. A read-only
 * server (SQLSTATE 25006) is UNAVAILABLE. A resolve parked for a revision that news announced but
 * the database does not have waits without spinning. min_revision is exact on a replica that
 * never hears the notifications. An audit log that falls behind by more than --audit-max-backlog
 * rows gets reads refused, never answered without their row. Every connection the replica holds
 * terminated (as a failover or an administrator would): the next calls make them again and
 * succeed. A call's deadline cancels its blocked statement, and the write never lands.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "coffer/v1/access.stub.h"
#include "coffer/v1/secrets.stub.h"
#include "grpc/health/v1/health.stub.h"
#include "helpers.h"

static int64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The tests' database name ("coffer_test"). */
static const char *dbname(void)
{
	const char *slash = strrchr(cfg.database_url, '/');
	return slash ? slash + 1 : "coffer_test";
}

/* A multi-host URL: the relay first, then PostgreSQL itself (standing in for a promoted standby
 * of the same data). */
static void two_hosts(const struct relay *r, char *url, size_t cap)
{
	snprintf(url, cap, "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s user=coffer", r->port,
	         r->upstream_port, dbname());
}

/* UpdateSecret S of p through addr with a deadline of ms: the code. */
static int write_within(const char *addr, const char *p, const char *value, int ms)
{
	coffer_channel_options o = {
	        .target = addr, .token = access_admin_token(), .timeout_ms = ms};
	coffer_channel *a = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_channel_new(&o, &a, &err), 0);
	Coffer__V1__UpdateSecretRequest req = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	req.project = (char *)p;
	req.name = "S";
	req.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	req.value = (char *)value;
	Coffer__V1__Secret *s = NULL;
	int rc = coffer_v1_secrets_update_secret(a, &req, &s, &err);
	if (rc == 0)
		protobuf_c_message_free_unpacked(&s->base, NULL);
	coffer_channel_free(a);
	return rc == 0 ? 0 : err.code;
}

/* A replica whose database is reached through the relay r (started here; frozen first with
 * frozen): only through it, or, with two, through it and then PostgreSQL directly. url (256
 * bytes) holds its URL for as long as it runs. */
static struct server *through_relay(struct relay *r, bool two, bool frozen, char *url, char *addr)
{
	relay_start(r);
	if (frozen)
		relay_freeze(r, true);
	if (two)
		two_hosts(r, url, 256);
	else
		relay_url(r, url, 256);
	struct settings c = cfg;
	c.database_url = url;
	c.notify_database_url = "";
	return start_replica(&c, addr, 64);
}

START_TEST(a_host_that_hangs_is_left_for_the_next_one_without_a_restart)
{
	struct relay r;
	char url[256], addr[64];
	struct server *s = through_relay(&r, true, false, url, addr);
	int metrics = server_metrics_port(s);
	const char *p = uniq("hang");
	project_with(addr, p, "before");
	ck_assert_int_eq(write_within(addr, p, "through the relay", 5000), 0);
	ck_assert_int_eq(metric_value(metrics, "coffer_cache_enabled "), 1);
	int64_t t0 = mono_ms();
	relay_freeze(&r, true);
	/* The listener's ping goes unanswered: the cache is off within seconds. */
	bool off = false;
	while (!off && mono_ms() - t0 < 5000) {
		off = metric_value(metrics, "coffer_cache_enabled ") == 0;
		usleep(50 * 1000);
	}
	ck_assert_msg(off, "the cache still serves 5 s after the database hung");
	/* Every call ends within its deadline (it may already reach the next host); then writes go
	 * through the next host, without a restart. */
	int64_t ok_at = -1;
	while (ok_at < 0 && mono_ms() - t0 < 20000) {
		int64_t t1 = mono_ms();
		int code = write_within(addr, p, "after", 2000);
		ck_assert_msg(mono_ms() - t1 < 4000, "a call with a 2 s deadline took %lld ms",
		              (long long)(mono_ms() - t1));
		if (code == 0)
			ok_at = mono_ms() - t0;
	}
	ck_assert_msg(ok_at >= 0 && ok_at < 12000,
	              "writes went through again %lld ms after the hang", (long long)ok_at);
	/* The cache serves again once LISTEN is in force on the next host. */
	bool on = false;
	while (!on && mono_ms() - t0 < 20000) {
		on = metric_value(metrics, "coffer_cache_enabled ") == 1;
		usleep(50 * 1000);
	}
	ck_assert(on);
	ck_assert_int_eq(health_of(addr), 1);
	server_stop(s, 1);
	relay_freeze(&r, false);
	relay_stop(&r);
}
END_TEST

START_TEST(a_first_host_that_hangs_at_start_up_is_passed_over)
{
	struct relay r;
	char url[256], addr[64];
	int64_t t0 = mono_ms();
	struct server *s = through_relay(&r, true, true, url, addr);
	int64_t took = mono_ms() - t0;
	ck_assert_msg(took < 15000, "start-up took %lld ms", (long long)took);
	const char *p = uniq("starthang");
	project_with(addr, p, "v");
	ck_assert_int_eq(write_within(addr, p, "w", 5000), 0);
	server_stop(s, 1);
	relay_freeze(&r, false);
	relay_stop(&r);
}
END_TEST

struct blocked_writer {
	const char *addr, *p;
	int code;
};

static void *write_without_deadline(void *arg)
{
	struct blocked_writer *w = arg;
	w->code = write_within(w->addr, w->p, "never", 0);
	return NULL;
}

START_TEST(a_database_that_hangs_cannot_hold_the_stop)
{
	struct relay r;
	char url[256], addr[64];
	struct server *s = through_relay(&r, false, false, url, addr);
	const char *p = uniq("stophang");
	project_with(addr, p, "v");
	relay_freeze(&r, true);
	/* Calls without a deadline wait for the database on every database thread. */
	struct blocked_writer w[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct blocked_writer){addr, p, -1};
		pthread_create(&t[i], NULL, write_without_deadline, &w[i]);
	}
	/* Readiness says so once the listener gives up on the database. */
	int64_t t0 = mono_ms();
	while (health_of(addr) != 2 && mono_ms() - t0 < 8000)
		usleep(100 * 1000);
	ck_assert_int_eq(health_of(addr), 2);
	t0 = mono_ms();
	server_stop(s, 1);
	int64_t took = mono_ms() - t0;
	ck_assert_msg(took < 1000 + 8000, "the stop took %lld ms with the database hung",
	              (long long)took);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(w[i].code != 0, "a write went through a hung database");
	}
	relay_freeze(&r, false);
	relay_stop(&r);
}
END_TEST

START_TEST(a_write_answered_deadline_exceeded_never_commits_afterwards)
{
	const char *p = uniq("late");
	create_project(p);
	must_create_secret(p, "S", "before", 0);
	const char *vals[1] = {p};
	/* The lock is let go at once after the answer, and later: neither may let the write in. */
	for (int round = 0; round < 2; round++) {
		PQclear(sql("BEGIN", 0, NULL));
		PQclear(sql("SELECT id FROM projects WHERE name = $1 FOR UPDATE", 1, vals));
		ck_assert_int_eq(write_within(target, p, "late", 600), 4 /* DEADLINE_EXCEEDED */);
		if (round == 1)
			usleep(1500 * 1000);
		PQclear(sql("COMMIT", 0, NULL));
		usleep(1500 * 1000);
		char *v = must_reveal(p, "S");
		ck_assert_str_eq(v, "before");
		free(v);
		ck_assert_int_eq(project_revision(p), 2);
	}
}
END_TEST

START_TEST(a_read_only_server_is_unavailable_and_nothing_is_written)
{
	char url[512];
	snprintf(url, sizeof(url), "%s?options=-c%%20default_transaction_read_only%%3Don",
	         cfg.database_url);
	struct settings c = cfg;
	c.database_url = url;
	c.notify_database_url = cfg.database_url;
	c.migrate = false; /* the schema is there already; a read-only server could not */
	char addr[64];
	struct server *s = start_replica(&c, addr, sizeof(addr));
	const char *p = uniq("readonly");
	create_project(p);
	coffer_channel *a = to(addr, access_admin_token(), 10000);
	Coffer__V1__CreateSecretRequest req = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	req.project = (char *)p;
	req.name = "S";
	req.value = "v";
	req.description = "";
	Coffer__V1__Secret *sec = NULL;
	coffer_error err;
	ck_assert_int_ne(coffer_v1_secrets_create_secret(a, &req, &sec, &err), 0);
	ck_assert_int_eq(err.code, COFFER_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(err.message, "read-only"));
	ck_assert_int_eq(project_revision(p), 1);
	coffer_channel_free(a);
	server_stop(s, 1);
}
END_TEST

/* Transactions the database has counted for the tests' database, once its counters settle. */
static long long transactions(void)
{
	usleep(1200 * 1000); /* backends report their counts at most once a second */
	const char *vals[1] = {dbname()};
	PGresult *r = sql("SELECT xact_commit + xact_rollback FROM pg_stat_database "
	                  "WHERE datname = $1",
	                  1, vals);
	long long n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQclear(sql("SELECT pg_stat_clear_snapshot()", 0, NULL));
	return n;
}

START_TEST(a_resolve_parked_for_a_revision_that_never_comes_does_not_spin)
{
	struct settings c = cfg;
	char addr[64];
	struct server *s = start_replica(&c, addr, sizeof(addr));
	const char *p = uniq("spin");
	project_with(addr, p, "v");
	char token[128], id[32];
	runtime_token(addr, p, token, id);
	int64_t rev = project_revision(p);
	/* News of a revision the database does not have (as after a failover that lost it). */
	const char *vals[2] = {p, NULL};
	char want[32];
	snprintf(want, sizeof(want), "%lld", (long long)rev + 5);
	vals[1] = want;
	PQclear(sql("SELECT pg_notify('coffer_changes', 'p ' || id || ' ' || $2) FROM projects "
	            "WHERE name = $1",
	            2, vals));
	usleep(200 * 1000);
	long long before = transactions();
	int64_t t0 = mono_ms();
	ck_assert_int_eq(resolve_as(addr, token, p, rev + 5, NULL, NULL), COFFER_UNAVAILABLE);
	int64_t waited = mono_ms() - t0;
	long long spent = transactions() - before;
	/* It waited its two seconds, reading a few times (every half second), not thousands. */
	ck_assert_int_ge(waited, 1500);
	ck_assert_msg(spent < 150, "%lld transactions in %lld ms", spent, (long long)waited);
	server_stop(s, 1);
}
END_TEST

START_TEST(min_revision_is_exact_on_a_replica_that_hears_no_notifications)
{
	struct settings c = cfg;
	char a_addr[64], b_addr[64];
	struct server *a = start_replica(&c, a_addr, sizeof(a_addr));
	/* B listens on another database: the news of A's writes never reaches it. */
	char deaf[512];
	snprintf(deaf, sizeof(deaf), "%.*s/postgres",
	         (int)(strrchr(cfg.database_url, '/') - cfg.database_url), cfg.database_url);
	struct settings cb = cfg;
	cb.notify_database_url = deaf;
	struct server *b = start_replica(&cb, b_addr, sizeof(b_addr));
	const char *p = uniq("deaf");
	project_with(a_addr, p, "v0");
	char token[128], id[32];
	runtime_token(a_addr, p, token, id);
	char v[64];
	for (int k = 0; k < 2; k++) /* B holds v0 in its cache */
		ck_assert_int_eq(resolve_as(b_addr, token, p, 0, v, NULL), 0);
	ck_assert_str_eq(v, "v0");
	for (int round = 1; round <= 3; round++) {
		char want[16];
		snprintf(want, sizeof(want), "v%d", round);
		int64_t rev = write_s(a_addr, p, want);
		int64_t got = 0;
		ck_assert_int_eq(resolve_as(b_addr, token, p, rev, v, &got), 0);
		ck_assert_int_ge(got, rev);
		ck_assert_str_eq(v, want);
	}
	server_stop(b, 1);
	server_stop(a, 1);
}
END_TEST

struct reader {
	const char *addr, *token, *p;
	int code;
};

static void *read_once(void *arg)
{
	struct reader *r = arg;
	r->code = resolve_as(r->addr, r->token, r->p, 0, NULL, NULL);
	return NULL;
}

START_TEST(reads_beyond_the_audit_backlog_are_refused_never_answered_without_their_row)
{
	struct settings c = cfg;
	c.audit_max_backlog = 2;
	char addr[64];
	struct server *s = start_replica(&c, addr, sizeof(addr));
	const char *p = uniq("backlog");
	project_with(addr, p, "v");
	char token[128], id[32];
	runtime_token(addr, p, token, id);
	ck_assert_int_eq(resolve_as(addr, token, p, 0, NULL, NULL), 0); /* token and rows cached */
	/* The audit log stalls: its table is locked, so the writer's batch waits. */
	PQclear(sql("BEGIN", 0, NULL));
	PQclear(sql("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE", 0, NULL));
	enum { N = 12 };
	struct reader r[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		r[i] = (struct reader){addr, token, p, -1};
		pthread_create(&t[i], NULL, read_once, &r[i]);
	}
	usleep(1500 * 1000);
	PQclear(sql("COMMIT", 0, NULL));
	int ok = 0, refused = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		ok += r[i].code == 0;
		refused += r[i].code == COFFER_UNAVAILABLE;
	}
	ck_assert_int_eq(ok + refused, N);
	ck_assert_msg(refused > 0, "no read was refused with the audit log %d rows behind", N);
	/* Every read that was answered has its row. */
	const char *vals[2] = {p, id};
	PGresult *q = sql("SELECT count(*) FROM audit_events WHERE project = $1 AND token_id = $2 "
	                  "AND method = '/coffer.v1.Secrets/ResolveSecrets' AND code = 0",
	                  2, vals);
	ck_assert_int_eq(atoi(PQgetvalue(q, 0, 0)), ok + 1);
	PQclear(q);
	server_stop(s, 1);
}
END_TEST

/* ---- connections cut and statements held ---- */

START_TEST(terminated_backends_do_not_fail_the_next_calls)
{
	const char *p = uniq("lost");
	create_project(p);
	/* Every connection cofferd holds is cut (as a failover or an administrator would): the
	 * next calls find their connection dead before they start, make it again and succeed. */
	for (int round = 0; round < 3; round++) {
		PQclear(sql(
		        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
		        "current_database() AND pid <> pg_backend_pid() AND backend_type = "
		        "'client backend'",
		        0, NULL));
		for (int i = 0; i < 8; i++) {
			Coffer__V1__GetProjectRequest g = COFFER__V1__GET_PROJECT_REQUEST__INIT;
			g.name = (char *)p;
			Coffer__V1__Project *pr = NULL;
			coffer_error err;
			ck_assert_msg(coffer_v1_projects_get_project(ch, &g, &pr, &err) == 0,
			              "round %d, call %d: %s %s", round, i,
			              coffer_code_name(err.code), err.message);
			protobuf_c_message_free_unpacked(&pr->base, NULL);
		}
		char name[16];
		snprintf(name, sizeof(name), "AFTER_%d", round);
		coffer_error err;
		ck_assert_msg(create_secret(p, name, "written after the cut", 0, &err) == 0,
		              "%s %s", coffer_code_name(err.code), err.message);
	}
	ck_assert_int_eq(project_revision(p), 4);
}
END_TEST

START_TEST(deadline_bounds_the_statement)
{
	const char *p = uniq("deadline");
	create_project(p);
	must_create_secret(p, "SLOW", "before", 0);
	const char *vals[1] = {p};
	PQclear(sql("BEGIN", 0, NULL));
	PQclear(sql("SELECT id FROM projects WHERE name = $1 FOR UPDATE", 1, vals));
	coffer_channel *fast = channel(400);
	Coffer__V1__UpdateSecretRequest u = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	u.project = (char *)p;
	u.name = "SLOW";
	u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	u.value = "after";
	Coffer__V1__Secret *s = NULL;
	coffer_error err;
	ck_assert_int_ne(coffer_v1_secrets_update_secret(fast, &u, &s, &err), 0);
	ck_assert_int_eq(err.code, 4 /* DEADLINE_EXCEEDED */);
	/* Let the server's statement time out, then release the lock: the write must not happen. */
	usleep(800 * 1000);
	PQclear(sql("ROLLBACK", 0, NULL));
	usleep(300 * 1000);
	char *v = must_reveal(p, "SLOW");
	ck_assert_str_eq(v, "before");
	free(v);
	ck_assert_int_eq(project_revision(p), 2);
	coffer_channel_free(fast);
}
END_TEST

TCase *tcase_database(void)
{
	TCase *tc = tcase_create("database");
	tcase_set_timeout(tc, 120);
	test_add(tc, a_host_that_hangs_is_left_for_the_next_one_without_a_restart);
	test_add(tc, a_first_host_that_hangs_at_start_up_is_passed_over);
	test_add(tc, a_database_that_hangs_cannot_hold_the_stop);
	test_add(tc, a_write_answered_deadline_exceeded_never_commits_afterwards);
	test_add(tc, a_read_only_server_is_unavailable_and_nothing_is_written);
	test_add(tc, a_resolve_parked_for_a_revision_that_never_comes_does_not_spin);
	test_add(tc, min_revision_is_exact_on_a_replica_that_hears_no_notifications);
	test_add(tc, reads_beyond_the_audit_backlog_are_refused_never_answered_without_their_row);
	test_add(tc, terminated_backends_do_not_fail_the_next_calls);
	test_add(tc, deadline_bounds_the_statement);
	return tc;
}
