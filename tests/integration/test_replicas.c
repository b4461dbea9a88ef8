/*
 * test_replicas.c - three cofferd over one PostgreSQL, as on Kubernetes, each with its cache:
 * read-your-writes with min_revision on another replica, convergence without it, a revoked token
 * refused everywhere, a deleted project gone everywhere (and a new one of the same name not
 * confused with it), the cache dropped when a replica loses its notifications. And the serving
 * path: calls parked for a revision and idle streams hold no thread, and calls beyond
 * --max-calls are refused.
 *
 * Time bounds here are generous upper limits that only a broken replica misses (the figures, a
 * p99 of tens of milliseconds, are measured by bench/run.sh, not asserted).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc_security.h>

#include "check_run.h"
#include "coffer/v1/access.stub.h"
#include "coffer/v1/environments.stub.h"
#include "coffer/v1/projects.stub.h"
#include "coffer/v1/secrets.stub.h"
#include "helpers.h"
#include "store.h"

enum { N_REPLICAS = 3 };

static struct server *rep[N_REPLICAS];
static char rep_addr[N_REPLICAS][64];
static int rep_metrics[N_REPLICAS];

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void replicas_up(void)
{
	if (rep[0])
		return;
	access_admin_token(); /* the admin token of this database */
	for (int i = 0; i < N_REPLICAS; i++) {
		struct settings c2 = cfg;
		rep[i] = start_replica(&c2, rep_addr[i], sizeof(rep_addr[i]));
		rep_metrics[i] = server_metrics_port(rep[i]);
	}
}

static void replicas_down(void)
{
	for (int i = 0; i < N_REPLICAS; i++) {
		server_stop(rep[i], 1);
		rep[i] = NULL;
	}
}

/* Polls a resolve through addr until S reads want (or the code is want_code, when not 0); the
 * milliseconds it took, or -1 after limit_ms. */
static double until(const char *addr, const char *token, const char *p, const char *want,
                    int want_code, double limit_ms)
{
	double t0 = now_ms();
	while (now_ms() - t0 < limit_ms) {
		char v[64];
		int code = resolve_as(addr, token, p, 0, v, NULL);
		if ((want_code && code == want_code) ||
		    (!want_code && code == 0 && want && strcmp(v, want) == 0))
			return now_ms() - t0;
		usleep(2000);
	}
	return -1;
}

START_TEST(a_write_is_read_exactly_with_min_revision_on_another_replica)
{
	replicas_up();
	const char *p = uniq("ryw");
	project_with(rep_addr[0], p, "v0");
	char token[128], id[32];
	runtime_token(rep_addr[0], p, token, id);
	char v[64];
	for (int i = 0; i < N_REPLICAS; i++)
		for (int k = 0; k < 2; k++) { /* the second one from memory */
			ck_assert_int_eq(resolve_as(rep_addr[i], token, p, 0, v, NULL), 0);
			ck_assert_str_eq(v, "v0");
		}
	for (int round = 1; round <= 5; round++) {
		char want[16];
		snprintf(want, sizeof(want), "v%d", round);
		int64_t rev = write_s(rep_addr[round % N_REPLICAS], p, want);
		/* Every other replica answers with at least that revision, and its value. */
		for (int i = 0; i < N_REPLICAS; i++) {
			int64_t got = 0;
			ck_assert_int_eq(resolve_as(rep_addr[i], token, p, rev, v, &got), 0);
			ck_assert_int_ge(got, rev);
			ck_assert_str_eq(v, want);
		}
	}
}
END_TEST

START_TEST(replicas_converge_without_min_revision)
{
	replicas_up();
	const char *p = uniq("conv");
	project_with(rep_addr[0], p, "old");
	char token[128], id[32];
	runtime_token(rep_addr[0], p, token, id);
	long long hits0 = metric_value(rep_metrics[1], "coffer_cache_hits_total");
	for (int i = 0; i < N_REPLICAS; i++)
		ck_assert_double_ge(until(rep_addr[i], token, p, "old", 0, 5000), 0);
	char v[64];
	ck_assert_int_eq(resolve_as(rep_addr[1], token, p, 0, v, NULL), 0);
	/* The replica answered from memory: the write must reach it through a notification. */
	ck_assert_int_gt(metric_value(rep_metrics[1], "coffer_cache_hits_total"), hits0);
	double worst = 0;
	for (int round = 0; round < 10; round++) {
		char want[16];
		snprintf(want, sizeof(want), "new-%d", round);
		write_s(rep_addr[0], p, want);
		for (int i = 1; i < N_REPLICAS; i++) {
			double ms = until(rep_addr[i], token, p, want, 0, 5000);
			ck_assert_msg(ms >= 0, "replica %d still answers the old value after 5 s",
			              i);
			worst = ms > worst ? ms : worst;
		}
	}
	printf("replicas: 10 writes, slowest to show on another replica %.1f ms\n", worst);
}
END_TEST

START_TEST(a_revoked_token_is_refused_everywhere)
{
	replicas_up();
	const char *p = uniq("revoke");
	project_with(rep_addr[0], p, "x");
	char token[128], id[32];
	runtime_token(rep_addr[0], p, token, id);
	for (int i = 0; i < N_REPLICAS; i++)
		for (int k = 0; k < 2; k++)
			ck_assert_int_eq(resolve_as(rep_addr[i], token, p, 0, NULL, NULL), 0);
	coffer_channel *a = to(rep_addr[0], access_admin_token(), 20000);
	Coffer__V1__RevokeTokenRequest rq = COFFER__V1__REVOKE_TOKEN_REQUEST__INIT;
	rq.id = id;
	Google__Protobuf__Empty *empty = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_access_revoke_token(a, &rq, &empty, &err), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
	coffer_channel_free(a);
	/* At once where it was revoked; within a second elsewhere (docs/api.md); then never
	 * again anywhere. */
	ck_assert_int_eq(resolve_as(rep_addr[0], token, p, 0, NULL, NULL), COFFER_UNAUTHENTICATED);
	for (int i = 1; i < N_REPLICAS; i++)
		ck_assert_msg(until(rep_addr[i], token, p, NULL, COFFER_UNAUTHENTICATED, 1000) >= 0,
		              "replica %d still accepts the revoked token after 1 s", i);
	for (int k = 0; k < 20; k++)
		for (int i = 0; i < N_REPLICAS; i++)
			ck_assert_int_eq(resolve_as(rep_addr[i], token, p, 0, NULL, NULL),
			                 COFFER_UNAUTHENTICATED);
}
END_TEST

START_TEST(a_deleted_project_is_gone_everywhere_and_its_name_starts_over)
{
	replicas_up();
	const char *p = uniq("gone");
	project_with(rep_addr[0], p, "before");
	char old_token[128], old_id[32];
	runtime_token(rep_addr[0], p, old_token, old_id);
	for (int i = 0; i < N_REPLICAS; i++)
		ck_assert_double_ge(until(rep_addr[i], old_token, p, "before", 0, 5000), 0);
	coffer_channel *a = to(rep_addr[0], access_admin_token(), 20000);
	Coffer__V1__DeleteProjectRequest dp = COFFER__V1__DELETE_PROJECT_REQUEST__INIT;
	dp.name = (char *)p;
	Google__Protobuf__Empty *empty = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_projects_delete_project(a, &dp, &empty, &err), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
	coffer_channel_free(a);
	/* A new project of the same name, with another value and its own token. */
	project_with(rep_addr[2], p, "after");
	char new_token[128], new_id[32];
	runtime_token(rep_addr[2], p, new_token, new_id);
	for (int i = 0; i < N_REPLICAS; i++) {
		ck_assert_msg(
		        until(rep_addr[i], old_token, p, NULL, COFFER_UNAUTHENTICATED, 5000) >= 0,
		        "replica %d accepts a token of the deleted project", i);
		char v[64];
		ck_assert_int_eq(resolve_as(rep_addr[i], new_token, p, 0, v, NULL), 0);
		ck_assert_str_eq(v, "after");
	}
}
END_TEST

START_TEST(a_replica_that_loses_its_notifications_drops_its_cache)
{
	replicas_up();
	/* A fourth replica reaches PostgreSQL through a relay that can fail like a network. */
	static struct relay r; /* outlives the test if an assertion ends it early */
	relay_start(&r);
	char url[512];
	relay_url(&r, url, sizeof(url));
	struct settings c2 = cfg;
	c2.database_url = url;
	char addr[64];
	struct server *x = start_replica(&c2, addr, sizeof(addr));
	int mport = server_metrics_port(x);
	const char *p = uniq("deaf");
	project_with(rep_addr[0], p, "cached");
	char token[128], id[32];
	runtime_token(rep_addr[0], p, token, id);
	for (int k = 0; k < 3; k++)
		ck_assert_double_ge(until(addr, token, p, "cached", 0, 5000), 0);
	ck_assert_int_gt(metric_value(mport, "coffer_cache_entries"), 0);
	/* Its connections are cut and refused; a write lands meanwhile, and its notification
	 * never reaches this replica. */
	relay_cut(&r, true);
	usleep(300 * 1000);
	write_s(rep_addr[0], p, "fresh");
	relay_allow(&r);
	/* Once it listens again, it must not answer from what it cached before. */
	double t0 = now_ms();
	while (metric_value(mport, "coffer_cache_enabled") != 1 && now_ms() - t0 < 10000)
		usleep(20000);
	ck_assert_int_eq(metric_value(mport, "coffer_cache_enabled"), 1);
	for (int k = 0; k < 20; k++) {
		char v[64];
		ck_assert_int_eq(resolve_as(addr, token, p, 0, v, NULL), 0);
		ck_assert_msg(strcmp(v, "fresh") == 0,
		              "the replica answered \"%s\" from a cache it could not keep coherent",
		              v);
	}
	server_stop(x, 1);
	relay_stop(&r);
}
END_TEST

/* ---- the serving path: waiting costs memory, not threads ---- */

struct waiter_arg {
	const char *addr, *token, *project;
	int64_t min_revision;
	int code;
	char value[64];
};

static void *wait_resolve(void *arg)
{
	struct waiter_arg *w = arg;
	w->code = resolve_as(w->addr, w->token, w->project, w->min_revision, w->value, NULL);
	return NULL;
}

/* n threads resolving p through addr with min_revision: they wait for it. */
static void start_waiters(struct waiter_arg *w, pthread_t *t, int n, const char *addr,
                          const char *token, const char *p, int64_t min_revision)
{
	for (int i = 0; i < n; i++) {
		w[i] = (struct waiter_arg){addr, token, p, min_revision, -1, ""};
		pthread_create(&t[i], NULL, wait_resolve, &w[i]);
	}
}

/* A replica of its own (settings c2), a project p with S, a runtime token, and p's revision. */
static struct server *replica_with_project(struct settings *c2, char *addr, const char *p,
                                           char *token, int64_t *rev)
{
	struct server *s = start_replica(c2, addr, 64);
	project_with(addr, p, "before");
	char id[32];
	runtime_token(addr, p, token, id);
	ck_assert_int_eq(resolve_as(addr, token, p, 0, NULL, rev), 0);
	return s;
}

START_TEST(parked_resolves_hold_no_thread)
{
	struct settings c2 = cfg;
	c2.workers = 1;
	c2.db_connections = 1;
	char addr[64], token[128];
	const char *p = uniq("park");
	int64_t rev = 0;
	struct server *s = replica_with_project(&c2, addr, p, token, &rev);
	int mport = server_metrics_port(s);
	/* Resolves wait for a revision that does not exist yet. */
	enum { N = 20 };
	struct waiter_arg w[N];
	pthread_t t[N];
	start_waiters(w, t, N, addr, token, p, rev + 1);
	/* (A parked resolve waits up to 2 s: the rest of the test stays well within that.) */
	double t0 = now_ms();
	while (metric_value(mport, "coffer_waiting_for_revision") < N && now_ms() - t0 < 1000)
		usleep(10000);
	long long parked = metric_value(mport, "coffer_waiting_for_revision");
	ck_assert_int_ge(parked, 1);
	printf("parked: %lld resolves waiting for revision %lld on one database thread\n", parked,
	       (long long)rev + 1);
	/* With one database thread and one gRPC thread, other calls still go through. */
	coffer_channel *a = to(addr, access_admin_token(), 3000);
	Coffer__V1__GetProjectRequest gp = COFFER__V1__GET_PROJECT_REQUEST__INIT;
	gp.name = (char *)p;
	Coffer__V1__Project *proj = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_projects_get_project(a, &gp, &proj, &err) == 0,
	              "a call that needs the database waited behind parked ones: %s", err.message);
	protobuf_c_message_free_unpacked(&proj->base, NULL);
	coffer_channel_free(a);
	/* The revision comes: every parked resolve answers with it. */
	write_s(addr, p, "after");
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].code, 0);
		ck_assert_str_eq(w[i].value, "after");
	}
	ck_assert_int_eq(metric_value(mport, "coffer_waiting_for_revision"), 0);
	server_stop(s, 1);
}
END_TEST

START_TEST(idle_streams_hold_no_thread)
{
	struct settings c2 = cfg;
	c2.workers = 1;
	c2.db_connections = 1;
	c2.max_streams = 500;
	c2.stream_idle_seconds = 2;
	char addr[64];
	struct server *s = start_replica(&c2, addr, sizeof(addr));
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	grpc_channel *chan = grpc_channel_create(addr, creds, NULL);
	enum { N = 100 };
	struct open_stream *st = calloc(N, sizeof(*st));
	for (int i = 0; i < N; i++)
		stream_open(chan, &st[i]);
	/* A hundred idle clients on one thread: the replica still answers. */
	for (int i = 0; i < N; i++)
		ck_assert(!stream_ended(&st[i], 1));
	coffer_channel *a = to(addr, access_admin_token(), 3000);
	Coffer__V1__ListProjectsRequest lp = COFFER__V1__LIST_PROJECTS_REQUEST__INIT;
	Coffer__V1__ListProjectsResponse *r = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_projects_list_projects(a, &lp, &r, &err) == 0, "%s", err.message);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	coffer_channel_free(a);
	/* And it closes them when their idle time is up. */
	for (int i = 0; i < N; i++) {
		ck_assert_msg(stream_ended(&st[i], 10000), "idle stream %d was never closed", i);
		ck_assert_int_eq(st[i].status, GRPC_STATUS_CANCELLED);
		stream_close(&st[i]);
	}
	free(st);
	grpc_channel_destroy(chan);
	grpc_channel_credentials_release(creds);
	server_stop(s, 1);
}
END_TEST

START_TEST(calls_beyond_max_calls_are_resource_exhausted)
{
	struct settings c2 = cfg;
	c2.max_calls = 5;
	c2.http_listen = "127.0.0.1:0";
	char addr[64], token[128];
	const char *p = uniq("maxcalls");
	int64_t rev = 0;
	struct server *s = replica_with_project(&c2, addr, p, token, &rev);
	int mport = server_metrics_port(s);
	replicas_up(); /* before the waiters: they wait 2 s at most, and starting replicas takes
	                  time */
	enum { N = 5 };
	struct waiter_arg w[N];
	pthread_t t[N];
	/* Five resolves park for their revision (2 s at most each). On a loaded machine they may
	 * not all arrive in time: then they are let go and sent again. */
	bool full = false;
	for (int attempt = 0; attempt < 5 && !full; attempt++) {
		double t0 = now_ms();
		while (metric_value(mport, "coffer_calls_in_flight") > 0 && now_ms() - t0 < 5000)
			usleep(10000);
		start_waiters(w, t, N, addr, token, p, rev + 1);
		t0 = now_ms();
		while (metric_value(mport, "coffer_calls_in_flight") < N && now_ms() - t0 < 1000)
			usleep(10000);
		full = metric_value(mport, "coffer_calls_in_flight") == N;
		for (int i = 0; i < N && !full; i++)
			pthread_join(t[i], NULL);
	}
	ck_assert_msg(full, "five resolves were never in flight at once");
	/* Five calls wait: the sixth is turned away at once, with a clear code. */
	ck_assert_int_eq(resolve_as(addr, token, p, 0, NULL, NULL), COFFER_RESOURCE_EXHAUSTED);
	/* So is a request to the HTTP endpoint: it is a call of the same runtime. */
	char path[256];
	snprintf(path, sizeof(path), "/v1/projects/%s/environments/main/versions/live/secrets", p);
	char *body = http_get_as(server_http_port(s), path, token);
	ck_assert_msg(strstr(body, "HTTP/1.1 429") == body &&
	                      strstr(body, "\"code\":\"RESOURCE_EXHAUSTED\"") != NULL,
	              "%s", body);
	free(body);
	/* The revision they wait for is written through another replica (this one is full). */
	write_s(rep_addr[0], p, "b");
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].code, 0);
	}
	server_stop(s, 1);
}
END_TEST

/* ---- resolve plans on a large database ---- */

/* The plan of EXPLAIN sql with the parameters, as one string (malloc'd). */
static char *plan_of(PGconn *c, const char *sql, int n, const char *const *vals)
{
	char q[4096];
	snprintf(q, sizeof(q), "EXPLAIN %s", sql);
	PGresult *r = PQexecParams(c, q, n, NULL, vals, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
	size_t cap = 1, len = 0;
	for (int i = 0; i < PQntuples(r); i++)
		cap += strlen(PQgetvalue(r, i, 0)) + 1;
	char *out = calloc(1, cap);
	for (int i = 0; i < PQntuples(r); i++)
		len += (size_t)snprintf(out + len, cap - len, "%s\n", PQgetvalue(r, i, 0));
	PQclear(r);
	return out;
}

static void must_exec(PGconn *c, const char *q)
{
	PGresult *r = PQexec(c, q);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
	              "%s: %s", q, PQerrorMessage(c));
	PQclear(r);
}

START_TEST(resolve_plans_read_neither_history_nor_other_projects)
{
	/* A database of its own, migrated, with 200,000 value rows: 1,000 projects of 25 secrets,
	 * each default written 8 times. */
	must_exec(admin, "DROP DATABASE IF EXISTS coffer_test_plans");
	must_exec(admin, "CREATE DATABASE coffer_test_plans");
	char url[512];
	snprintf(url, sizeof(url), "%.*s/coffer_test_plans",
	         (int)(strrchr(cfg.database_url, '/') - cfg.database_url), cfg.database_url);
	struct settings c2 = cfg;
	c2.database_url = url;
	struct cof_err e = {0};
	ck_assert_msg(server_migrate(&c2, 5, &e) == 0, "%s %s", e.msg, e.detail);
	PGconn *c = PQconnectdb(url);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	must_exec(c, "INSERT INTO projects (name, description, revision) "
	             "SELECT 'p' || g, '', 100 FROM generate_series(1, 1000) g");
	must_exec(c, "INSERT INTO environments (project_id, name, description, revision, "
	             "created_rev) SELECT id, 'main', '', 1, 1 FROM projects");
	must_exec(c, "INSERT INTO secrets (project_id, name, visibility, description, revision, "
	             "created_rev) SELECT p.id, 'S_' || g, 1, '', 1, 1 FROM projects p, "
	             "generate_series(1, 25) g");
	must_exec(c, "INSERT INTO secret_values (secret_id, environment_id, version, valid_from, "
	             "valid_to, term, sealed) SELECT s.id, NULL, 0, h, CASE WHEN h = 8 THEN NULL "
	             "ELSE h + 1 END, 1, decode(md5(s.id::text || '-' || h), 'hex') "
	             "FROM secrets s, generate_series(1, 8) h");
	must_exec(c, "ANALYZE");
	PGresult *r = PQexec(c, "SELECT p.id, e.id FROM projects p JOIN environments e "
	                        "ON e.project_id = p.id WHERE p.name = 'p500'");
	ck_assert_int_eq(PQntuples(r), 1);
	const char *vals[4] = {PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), "2", "5"};
	char *now = plan_of(c, store_sql_resolve_current, 3, vals);
	char *then = plan_of(c, store_sql_resolve_at, 4, vals);
	PQclear(r);
	ck_assert_msg(strstr(now, "Seq Scan on secret_values") == NULL &&
	                      strstr(now, "secret_values_current") != NULL,
	              "the current rows are not read through the index of current values:\n%s",
	              now);
	ck_assert_msg(strstr(then, "Seq Scan on secret_values") == NULL &&
	                      strstr(then, "secret_values_history") != NULL,
	              "rows at a revision are not read through the history index:\n%s", then);
	ck_assert_msg(strstr(now, "Seq Scan on secrets") == NULL &&
	                      strstr(then, "Seq Scan on secrets") == NULL,
	              "a resolve scans every project's secrets:\n%s\n%s", now, then);
	free(now);
	free(then);
	PQfinish(c);
	must_exec(admin, "DROP DATABASE coffer_test_plans");
}
END_TEST

static const Coffer__V1__ResolvedSecret *secret_in(const Coffer__V1__ResolveSecretsResponse *r,
                                                   const char *name)
{
	for (size_t i = 0; i < r->n_secrets; i++)
		if (strcmp(r->secrets[i]->name, name) == 0)
			return r->secrets[i];
	return NULL;
}

/* Every replica, three times: the answer of every name (kept after the first) says S = want from
 * source, at revision rev or later, as a resolve of S alone (never kept) does. */
static void every_replica_answers(const char *token, const char *p, const char *want, int source,
                                  int64_t rev)
{
	for (int i = 0; i < N_REPLICAS; i++) {
		for (int k = 0; k < 3; k++) {
			Coffer__V1__ResolveSecretsResponse *all =
			        must_resolve_names(rep_addr[i], token, p, NULL, 0, rev);
			char *names[] = {"S"};
			Coffer__V1__ResolveSecretsResponse *one =
			        must_resolve_names(rep_addr[i], token, p, names, 1, rev);
			const Coffer__V1__ResolvedSecret *a = secret_in(all, "S"),
			                                 *o = secret_in(one, "S");
			ck_assert_ptr_nonnull(a);
			ck_assert_ptr_nonnull(o);
			ck_assert_msg(strcmp(a->value, want) == 0,
			              "replica %d answered %s for S, not %s (round %d)", i,
			              a->value, want, k);
			ck_assert_str_eq(o->value, want);
			ck_assert_int_eq(a->source, source);
			ck_assert_int_eq(o->source, source);
			ck_assert_int_eq(a->revision, o->revision);
			ck_assert_int_ge(all->revision, rev);
			ck_assert_uint_eq(all->n_secrets, 2);
			ck_assert_ptr_nonnull(secret_in(all, "T"));
			protobuf_c_message_free_unpacked(&all->base, NULL);
			protobuf_c_message_free_unpacked(&one->base, NULL);
		}
	}
}

/* A replica keeps the whole answer of a state, sealed, and answers the next resolves of that state
 * with it: it must follow every write, on every replica, exactly as the rows do. */
START_TEST(kept_answers_follow_every_write_on_every_replica)
{
	replicas_up();
	const char *p = uniq("kept");
	project_with(rep_addr[0], p, "v-0");
	coffer_channel *a = to(rep_addr[1], access_admin_token(), 20000);
	coffer_error err = {0};
	Coffer__V1__CreateSecretRequest cs = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	cs.project = (char *)p;
	cs.name = "T";
	cs.value = "restricted-t";
	cs.visibility = COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED;
	cs.description = "";
	Coffer__V1__Secret *sec = NULL;
	ck_assert_msg(coffer_v1_secrets_create_secret(a, &cs, &sec, &err) == 0, "%s", err.message);
	int64_t rev = sec->revision;
	protobuf_c_message_free_unpacked(&sec->base, NULL);
	char token[128], id[32];
	runtime_token(rep_addr[0], p, token, id);
	long long kept[N_REPLICAS];
	for (int i = 0; i < N_REPLICAS; i++)
		kept[i] = metric_value(rep_metrics[i], "coffer_cache_answer_hits_total");
	every_replica_answers(token, p, "v-0", COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_DEFAULT, rev);
	for (int round = 1; round < 7; round++) {
		char want[32];
		snprintf(want, sizeof(want), "v-%d", round);
		rev = write_s(rep_addr[round % N_REPLICAS], p, want);
		every_replica_answers(token, p, want,
		                      COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_DEFAULT, rev);
	}
	/* An override of main's live version, then its removal. */
	Coffer__V1__SetOverrideRequest so = COFFER__V1__SET_OVERRIDE_REQUEST__INIT;
	so.project = (char *)p;
	so.environment = "main";
	so.version = COFFER__V1__VERSION__VERSION_LIVE;
	so.secret = "S";
	so.value = "override";
	Coffer__V1__Override *o = NULL;
	ck_assert_msg(coffer_v1_environments_set_override(a, &so, &o, &err) == 0, "%s",
	              err.message);
	rev = o->revision;
	protobuf_c_message_free_unpacked(&o->base, NULL);
	every_replica_answers(token, p, "override", COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_OVERRIDE,
	                      rev);
	Coffer__V1__DeleteOverrideRequest dr = COFFER__V1__DELETE_OVERRIDE_REQUEST__INIT;
	dr.project = (char *)p;
	dr.environment = "main";
	dr.version = COFFER__V1__VERSION__VERSION_LIVE;
	dr.secret = "S";
	Google__Protobuf__Empty *empty = NULL;
	ck_assert_msg(coffer_v1_environments_delete_override(a, &dr, &empty, &err) == 0, "%s",
	              err.message);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
	every_replica_answers(token, p, "v-6", COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_DEFAULT,
	                      rev + 1); /* the removal is the next revision */
	coffer_channel_free(a);
	/* The kept answers were used (else this test proves nothing about them). */
	for (int i = 0; i < N_REPLICAS; i++)
		ck_assert_int_gt(metric_value(rep_metrics[i], "coffer_cache_answer_hits_total"),
		                 kept[i]);
}
END_TEST

TCase *tcase_replicas(void)
{
	TCase *tc = tcase_create("replicas");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, NULL, replicas_down);
	test_add(tc, a_write_is_read_exactly_with_min_revision_on_another_replica);
	test_add(tc, replicas_converge_without_min_revision);
	test_add(tc, kept_answers_follow_every_write_on_every_replica);
	test_add(tc, a_revoked_token_is_refused_everywhere);
	test_add(tc, a_deleted_project_is_gone_everywhere_and_its_name_starts_over);
	test_add(tc, a_replica_that_loses_its_notifications_drops_its_cache);
	test_add(tc, parked_resolves_hold_no_thread);
	test_add(tc, idle_streams_hold_no_thread);
	test_add(tc, calls_beyond_max_calls_are_resource_exhausted);
	test_add(tc, resolve_plans_read_neither_history_nor_other_projects);
	return tc;
}
