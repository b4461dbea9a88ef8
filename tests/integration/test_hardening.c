/*
 * test_hardening.c - what a security review found, each case against real servers (tokens bound
 * to their project and retries of refused calls are in test_access.c): a commit whose outcome is
 * lost, merges that leak nothing about restricted
 * values, limits, a second server on a busy port, plaintext off loopback, idle and slow clients
 * that must not freeze a replica, a slow metrics scraper, floods of calls without a token, and
 * cancelled calls counted as such.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "check_run.h"
#include "helpers.h"
#include "quota.h"
#include "store.h"

/* ---- small tools ---- */

/* A server of its own for one test, from the suite's settings changed by the caller. */
static struct server *start(struct settings *c, char *addr, size_t cap)
{
	struct cof_err e = {0};
	struct server *s = NULL;
	c->listen = "127.0.0.1:0";
	ck_assert_msg(server_start(c, 5, &s, &e) == 0, "%s %s", e.msg, e.detail);
	snprintf(addr, cap, "127.0.0.1:%d", server_port(s));
	return s;
}

static coffer_channel *channel_to(const char *addr, const char *token, int timeout_ms, int retries)
{
	coffer_channel_options o = {
	        .target = addr, .token = token, .timeout_ms = timeout_ms, .max_retries = retries};
	coffer_channel *c = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_channel_new(&o, &c, &err), 0);
	return c;
}

static void set_value(const char *project, const char *env, int version, const char *secret,
                      const char *value)
{
	coffer_error err;
	ck_assert_msg(set_override(project, env, version, secret, value, 0, &err) == 0, "%s",
	              err.message);
}

/* ---- a commit whose answer is lost ---- */

struct cut_body {
	struct relay *relay; /* to cut */
	const char *name;    /* the project to insert */
};

/* Inserts a project, then cuts the connection before the COMMIT goes out. */
static int insert_then_cut(struct store *s, void *arg, struct cof_err *e)
{
	struct cut_body *b = arg;
	struct store_project p;
	int rc = store_project_insert(s, b->name, "", &p, e);
	if (rc)
		return rc;
	atomic_store(&b->relay->cut, true);
	relay_poke(b->relay);
	usleep(200 * 1000); /* the relay has reset both sides */
	return 0;
}

START_TEST(a_commit_whose_answer_is_lost_is_unknown)
{
	static struct relay r; /* outlives the test if an assertion ends it early */
	relay_start(&r);
	char url[512];
	relay_url(&r, url, sizeof(url));
	struct store *s = NULL;
	struct cof_err e = {0};
	ck_assert_msg(store_open(url, &s, &e) == 0, "%s %s", e.msg, e.detail);
	ck_assert_int_eq(store_call_begin(s, 10000, &e), 0);
	struct cut_body b = {&r, uniq("lost-commit")};
	int rc = store_tx(s, STORE_TX_WRITE, insert_then_cut, &b, NULL, &e);
	ck_assert_msg(rc == COF_EUNKNOWN, "got %d: %s (%s)", rc, e.msg, e.detail);
	ck_assert_ptr_nonnull(strstr(e.msg, "may or may not have been applied"));
	/* and it is not retried: the store made one attempt, and says so instead */
	store_close(s);
	relay_stop(&r);
}
END_TEST

/* ---- merges decide restricted changes by origin, not plaintext ---- */

static Coffer__V1__MergeEnvironmentResponse *dry_merge(const char *p, const char *source,
                                                       const char *into)
{
	Coffer__V1__MergeEnvironmentResponse *r = NULL;
	coffer_error err;
	ck_assert_msg(merge(p, source, into, true, 0, 0, false, &r, &err) == 0, "%s", err.message);
	return r;
}

START_TEST(merge_dry_run_is_no_oracle_for_restricted_values)
{
	const char *p = uniq("oracle");
	create_project(p);
	must_create_secret(p, "DB_PASSWORD", "default", 2 /* restricted */);
	must_create_secret(p, "API_URL", "https://default", 1 /* masked */);
	env_create(p, "prod");
	env_create(p, "guess");
	set_value(p, "prod", 2, "DB_PASSWORD", "hunter2");
	set_value(p, "prod", 2, "API_URL", "https://prod");
	/* An editor guesses the restricted value, and the masked one. */
	set_value(p, "guess", 2, "DB_PASSWORD", "hunter2");
	set_value(p, "guess", 2, "API_URL", "https://prod");
	Coffer__V1__MergeEnvironmentResponse *r = dry_merge(p, "guess", "prod");
	/* The right guess of the restricted value still reads "changed"; the masked one (which
	 * the editor could reveal anyway) is compared by value. */
	ck_assert_uint_eq(r->n_changes, 1);
	ck_assert_str_eq(r->changes[0]->secret, "DB_PASSWORD");
	ck_assert_int_eq(r->changes[0]->kind, COFFER__V1__CHANGE_KIND__CHANGE_KIND_CHANGED);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* A wrong guess looks exactly the same. */
	set_value(p, "guess", 2, "DB_PASSWORD", "wrong");
	r = dry_merge(p, "guess", "prod");
	ck_assert_uint_eq(r->n_changes, 1);
	ck_assert_int_eq(r->changes[0]->kind, COFFER__V1__CHANGE_KIND__CHANGE_KIND_CHANGED);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* After a real merge the target holds copies: merging again changes nothing. */
	coffer_error err;
	ck_assert_int_eq(merge(p, "guess", "prod", false, 0, 0, false, &r, &err), 0);
	ck_assert_int_eq(r->applied, 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	r = dry_merge(p, "guess", "prod");
	ck_assert_uint_eq(r->n_changes, 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* and a copy of a copy is the same value too */
	env_create(p, "third");
	ck_assert_int_eq(merge(p, "prod", "third", false, 0, 0, false, &r, &err), 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	r = dry_merge(p, "guess", "third");
	ck_assert_uint_eq(r->n_changes, 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	struct resolved res;
	resolve_into(p, "third", 2, 0, &res);
	ck_assert_str_eq(resolved_value(&res, "DB_PASSWORD"), "wrong");
	resolved_clear(&res);
}
END_TEST

/* ---- limits ---- */

START_TEST(resolve_names_are_capped_and_cheap)
{
	const char *p = uniq("names");
	create_project(p);
	must_create_secret(p, "A", "a", 0);
	must_create_secret(p, "B", "b", 0);
	size_t n = LIMIT_RESOLVE_NAMES;
	char **names = calloc(n + 1, sizeof(*names));
	char(*buf)[16] = calloc(n + 1, sizeof(*buf));
	for (size_t i = 0; i < n; i++) {
		/* many repeats of a few missing names, and the two that exist */
		snprintf(buf[i], sizeof(buf[i]), i % 2 ? "MISSING_%zu" : "B", (i / 2) % 3);
		names[i] = buf[i];
	}
	snprintf(buf[1], sizeof(buf[1]), "A");
	Coffer__V1__ResolveSecretsRequest q = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	q.project = (char *)p;
	q.environment = "main";
	q.version = COFFER__V1__VERSION__VERSION_DRAFT;
	q.names = names;
	q.n_names = n;
	Coffer__V1__ResolveSecretsResponse *r = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_secrets_resolve_secrets(ch, &q, &r, &err) == 0, "%s", err.message);
	ck_assert_uint_eq(r->n_secrets, 2);
	ck_assert_uint_eq(r->n_missing, 3);
	ck_assert_str_eq(r->missing[0], "MISSING_1"); /* the order first asked */
	ck_assert_str_eq(r->missing[1], "MISSING_2");
	ck_assert_str_eq(r->missing[2], "MISSING_0");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	q.n_names = n + 1;
	snprintf(buf[n], sizeof(buf[n]), "A");
	names[n] = buf[n];
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    ch, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            COFFER_RESOURCE_EXHAUSTED);
	free(names);
	free(buf);
}
END_TEST

START_TEST(project_limits_refuse_the_write_that_crosses_them)
{
	const char *p = uniq("quota");
	create_project(p);
	must_create_secret(p, "FIRST", "x", 0);
	const char *vals[1] = {p};
	/* Fill the project to its limits behind cofferd's back (it would take minutes through the
	 * API), then write once more through it. */
	char n_secrets[16], n_envs[16];
	snprintf(n_secrets, sizeof(n_secrets), "%d", LIMIT_SECRETS_PER_PROJECT - 1);
	snprintf(n_envs, sizeof(n_envs), "%d", LIMIT_ENVIRONMENTS_PER_PROJECT - 1);
	const char *sv[2] = {p, n_secrets};
	PQclear(sql("INSERT INTO secrets (project_id, name, visibility, description, revision, "
	            "created_rev) SELECT id, 'FILL_' || g, 1, '', 1, 1 FROM projects, "
	            "generate_series(1, $2::int) g WHERE name = $1",
	            2, sv));
	int64_t rev = project_revision(p);
	coffer_error err;
	ck_assert_int_eq(create_secret(p, "ONE_TOO_MANY", "x", 0, &err), -1);
	ck_assert_int_eq(err.code, COFFER_RESOURCE_EXHAUSTED);
	ck_assert_ptr_nonnull(strstr(err.message, "at most 5000 secrets"));
	ck_assert_int_eq(project_revision(p), rev);
	PQclear(sql("DELETE FROM secrets WHERE name LIKE 'FILL\\_%' AND project_id = "
	            "(SELECT id FROM projects WHERE name = $1)",
	            1, vals));
	/* environments */
	const char *ev[2] = {p, n_envs};
	PQclear(sql("INSERT INTO environments (project_id, name, description, revision, "
	            "created_rev) SELECT id, 'fill-' || g, '', 1, 1 FROM projects, "
	            "generate_series(1, $2::int) g WHERE name = $1",
	            2, ev));
	Coffer__V1__CreateEnvironmentRequest ce = COFFER__V1__CREATE_ENVIRONMENT_REQUEST__INIT;
	ce.project = (char *)p;
	ce.name = "one-too-many";
	EXPECT_CODE(coffer_v1_environments_create_environment(
	                    ch, &ce, (Coffer__V1__Environment **)&resp_, &err_),
	            COFFER_RESOURCE_EXHAUSTED);
	PQclear(sql("DELETE FROM environments WHERE name LIKE 'fill-%' AND project_id = "
	            "(SELECT id FROM projects WHERE name = $1)",
	            1, vals));
	/* value bytes: 15 MiB of stored values, then 1 MiB more through four writes of 64 KiB... */
	PQclear(sql(
	        "INSERT INTO secret_values (secret_id, environment_id, version, valid_from, "
	        "term, sealed) SELECT s.id, e.id, 1, 1, 1, decode(repeat('00', 1048576), 'hex') "
	        "FROM secrets s JOIN projects p ON p.id = s.project_id JOIN environments e ON "
	        "e.project_id = p.id AND e.name = 'main' WHERE p.name = $1",
	        1, vals));
	for (int i = 0; i < 14; i++) {
		char name[16];
		snprintf(name, sizeof(name), "BIG_%d", i);
		must_create_secret(p, name, "small", 0);
		const char *bv[2] = {p, name};
		PQclear(sql(
		        "INSERT INTO secret_values (secret_id, environment_id, version, "
		        "valid_from, term, sealed) SELECT s.id, e.id, 1, 1, 1, "
		        "decode(repeat('00', 1048576), 'hex') FROM secrets s JOIN projects p ON "
		        "p.id = s.project_id JOIN environments e ON e.project_id = p.id AND "
		        "e.name = 'main' WHERE p.name = $1 AND s.name = $2",
		        2, bv));
	}
	char *big = malloc(65537);
	memset(big, 'v', 65536);
	big[65536] = '\0';
	int refused = 0;
	for (int i = 0; i < 40 && !refused; i++) {
		char name[16];
		snprintf(name, sizeof(name), "MORE_%d", i);
		rev = project_revision(p);
		if (create_secret(p, name, big, 0, &err) != 0) {
			ck_assert_int_eq(err.code, COFFER_RESOURCE_EXHAUSTED);
			ck_assert_ptr_nonnull(strstr(err.message, "at most 16 MiB of values"));
			ck_assert_int_eq(project_revision(p), rev);
			refused = 1;
		}
	}
	ck_assert_int_eq(refused, 1);
	free(big);
	/* the overrides planted above cannot be resolved (they were never sealed): remove them */
	PQclear(sql("DELETE FROM projects WHERE name = $1", 1, vals));
}
END_TEST

/* ---- the port, plaintext ---- */

START_TEST(a_second_server_on_a_busy_port_fails)
{
	struct settings c2 = cfg;
	char addr[64];
	snprintf(addr, sizeof(addr), "%s", target);
	c2.listen = addr; /* the suite's server has it */
	struct cof_err e = {0};
	struct server *s = NULL;
	ck_assert_int_ne(server_start(&c2, 5, &s, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "cannot listen on"));
}
END_TEST

/* An IPv4 address of this machine that is not loopback ("" when it has none). */
static void outside_address(char *out, size_t cap)
{
	struct ifaddrs *all = NULL, *i;
	out[0] = '\0';
	ck_assert_int_eq(getifaddrs(&all), 0);
	for (i = all; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)i->ifa_addr;
			if ((ntohl(a->sin_addr.s_addr) >> 24) != 127) {
				inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)cap);
				break;
			}
		}
	freeifaddrs(all);
}

START_TEST(plaintext_stays_on_loopback_unless_asked)
{
	struct settings c2 = cfg;
	c2.listen = "0.0.0.0:0";
	struct cof_err e = {0};
	struct server *s = NULL;
	ck_assert_int_ne(server_start(&c2, 5, &s, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "refusing to serve plaintext on 0.0.0.0:0"));
	c2.allow_plaintext = true;
	ck_assert_msg(server_start(&c2, 5, &s, &e) == 0, "%s", e.msg);
	/* The client speaks TLS to any address off this host unless told otherwise. */
	char ip[64], addr[96];
	outside_address(ip, sizeof(ip));
	ck_assert_msg(*ip, "this machine has no address other than loopback");
	snprintf(addr, sizeof(addr), "%s:%d", ip, server_port(s));
	coffer_channel_options o = {.target = addr, .timeout_ms = 3000};
	coffer_channel *tls = NULL, *plain = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_channel_new(&o, &tls, &err), 0);
	o.plaintext = 1;
	ck_assert_int_eq(coffer_channel_new(&o, &plain, &err), 0);
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *r = NULL;
	ck_assert_int_ne(grpc_health_v1_health_check(tls, &req, &r, &err), 0);
	ck_assert_int_eq(err.code, COFFER_UNAVAILABLE); /* a TLS client meets a plaintext server */
	ck_assert_int_eq(grpc_health_v1_health_check(plain, &req, &r, &err), 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	coffer_channel_free(tls);
	coffer_channel_free(plain);
	server_stop(s, 1);
	ck_assert(coffer__loopback("127.0.0.1:50051"));
	ck_assert(coffer__loopback("localhost:50051"));
	ck_assert(coffer__loopback("[::1]:50051"));
	ck_assert(coffer__loopback("dns:///localhost:50051"));
	ck_assert(coffer__loopback("unix:/run/coffer.sock"));
	ck_assert(!coffer__loopback("coffer.internal:50051"));
	ck_assert(!coffer__loopback("10.0.0.7:50051"));
	ck_assert(!coffer__loopback("localhost.evil.example:50051"));
}
END_TEST

/* ---- idle and slow clients do not freeze a replica ---- */

START_TEST(idle_streams_without_a_token_do_not_starve_health)
{
	struct settings c2 = cfg;
	c2.workers = 2;
	c2.max_streams = 1;
	c2.stream_idle_seconds = 2;
	char addr[64];
	struct server *s = start(&c2, addr, sizeof(addr));
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	enum { N = 6 };
	grpc_channel *chans[N];
	struct open_stream st[N];
	for (int i = 0; i < N; i++) {
		chans[i] = grpc_channel_create(addr, creds, NULL);
		stream_open(chans[i], &st[i]);
	}
	/* One stream may wait (in a worker); the others are turned away at once. */
	int exhausted = 0, waiting = 0;
	for (int i = 0; i < N; i++) {
		if (stream_ended(&st[i], 1000))
			exhausted += st[i].status == GRPC_STATUS_RESOURCE_EXHAUSTED;
		else
			waiting++;
	}
	ck_assert_int_eq(waiting, 1);
	ck_assert_int_eq(exhausted, N - 1);
	/* While it idles, health answers on the other worker. */
	ck_assert_int_eq(health_of(addr), 1 /* SERVING */);
	/* The idle stream is closed after its idle time. */
	for (int i = 0; i < N; i++)
		if (!st[i].ended) {
			ck_assert_msg(stream_ended(&st[i], 10000),
			              "the idle stream was never closed");
			ck_assert_int_eq(st[i].status, GRPC_STATUS_CANCELLED);
		}
	for (int i = 0; i < N; i++) {
		stream_close(&st[i]);
		grpc_channel_destroy(chans[i]);
	}
	grpc_channel_credentials_release(creds);
	server_stop(s, 1);
}
END_TEST

START_TEST(clients_that_do_not_read_their_answers_do_not_hold_workers)
{
	const char *p = uniq("slow");
	create_project(p);
	large_secrets(ch, p, 12);
	struct settings c2 = cfg;
	c2.workers = 2;
	c2.send_timeout_seconds = 2;
	char addr[64];
	struct server *s = start(&c2, addr, sizeof(addr));
	/* Clients whose receive window never opens: the 700 KB answer cannot be sent. */
	grpc_arg args[2] = {
	        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_BDP_PROBE, .value.integer = 0},
	        {.type = GRPC_ARG_INTEGER,
	         .key = GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
	         .value.integer = 1024}};
	grpc_channel_args ca = {2, args};
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	Coffer__V1__ResolveSecretsRequest q = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	q.project = (char *)p;
	q.environment = "main";
	q.version = COFFER__V1__VERSION__VERSION_LIVE;
	size_t len = protobuf_c_message_get_packed_size(&q.base);
	uint8_t *packed = malloc(len);
	protobuf_c_message_pack(&q.base, packed);
	enum { N = 4 };
	grpc_channel *chans[N];
	grpc_call *calls[N];
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	for (int i = 0; i < N; i++) {
		chans[i] = grpc_channel_create(addr, creds, &ca);
		calls[i] = grpc_channel_create_call(
		        chans[i], NULL, GRPC_PROPAGATE_DEFAULTS, cq,
		        grpc_slice_from_static_string("/coffer.v1.Secrets/ResolveSecrets"), NULL,
		        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		grpc_slice slice = grpc_slice_from_copied_buffer((const char *)packed, len);
		grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
		grpc_slice_unref(slice);
		grpc_op ops[3];
		memset(ops, 0, sizeof(ops));
		ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[1].op = GRPC_OP_SEND_MESSAGE;
		ops[1].data.send_message.send_message = bb;
		ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
		ck_assert_int_eq(grpc_call_start_batch(calls[i], ops, 3, &calls[i], NULL),
		                 GRPC_CALL_OK);
		grpc_completion_queue_pluck(cq, &calls[i], gpr_inf_future(GPR_CLOCK_REALTIME),
		                            NULL);
		grpc_byte_buffer_destroy(bb);
	}
	/* More stuck readers than workers: health must still answer, once their time is up. */
	int status = -1;
	for (int i = 0; i < 20 && status != 1; i++)
		status = health_of(addr);
	ck_assert_int_eq(status, 1);
	for (int i = 0; i < N; i++) {
		grpc_call_cancel(calls[i], NULL);
		grpc_call_unref(calls[i]);
		grpc_channel_destroy(chans[i]);
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
	               .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	grpc_channel_credentials_release(creds);
	free(packed);
	server_stop(s, 1);
}
END_TEST

/* ---- metrics listener: one slow scraper ---- */

struct dribbler {
	int port;         /* the metrics port */
	atomic_bool stop; /* asked to end */
	int sent;         /* bytes it managed to send */
};

static void *dribble(void *arg)
{
	struct dribbler *d = arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)d->port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		for (int i = 0; i < 100 && !atomic_load(&d->stop); i++) {
			if (send(fd, "G", 1, MSG_NOSIGNAL) != 1)
				break;
			d->sent++;
			usleep(300 * 1000);
		}
	close(fd);
	return NULL;
}

START_TEST(a_slow_scraper_does_not_hold_the_metrics_listener)
{
	struct dribbler d = {.port = server_metrics_port(srv)};
	pthread_t t;
	pthread_create(&t, NULL, dribble, &d);
	usleep(300 * 1000);
	/* The dribbler sends a byte every 300 ms for up to 30 s; a scrape gets through anyway. */
	char *body = http_get(d.port, "/metrics");
	ck_assert_ptr_nonnull(strstr(body, "coffer_calls_total"));
	free(body);
	ck_assert_int_lt(d.sent, 60);
	atomic_store(&d.stop, true);
	pthread_join(t, NULL);
}
END_TEST

/* ---- calls without a valid token ---- */

START_TEST(a_flood_without_tokens_is_limited_and_counted)
{
	char path[] = "/tmp/coffer-flood-XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	unlink(path);
	struct settings c2 = cfg;
	c2.insecure_no_auth = false;
	c2.bootstrap_token_file = path; /* used only when no token exists yet */
	c2.unauthenticated_limit = 5;
	char addr[64];
	struct server *s = start(&c2, addr, sizeof(addr));
	const char *p = uniq("flood");
	coffer_channel *bad = channel_to(
	        addr, "coffer_notarealtoken00000000000000000000000000000000000", 5000, 3);
	Coffer__V1__GetProjectRequest g = COFFER__V1__GET_PROJECT_REQUEST__INIT;
	g.name = (char *)p;
	int unauth = 0, limited = 0;
	enum { CALLS = 120 };
	for (int i = 0; i < CALLS; i++) {
		Coffer__V1__Project *r = NULL;
		coffer_error err;
		ck_assert_int_ne(coffer_v1_projects_get_project(bad, &g, &r, &err), 0);
		unauth += err.code == COFFER_UNAUTHENTICATED;
		limited += err.code == COFFER_RESOURCE_EXHAUSTED;
	}
	coffer_channel_free(bad);
	/* a burst of 10, a few more as the bucket refills, the rest turned away before any work */
	ck_assert_int_eq(unauth + limited, CALLS);
	ck_assert_int_ge(unauth, 10);
	ck_assert_int_le(unauth, 40);
	/* Counted into a few rows, not one each, and visible within seconds. */
	const char *vals[1] = {p};
	long long counted = 0, rows = 0;
	for (int i = 0; i < 60 && counted < CALLS; i++) {
		usleep(100 * 1000);
		PGresult *r =
		        sql("SELECT count(*), coalesce(sum(count), 0) FROM audit_events WHERE "
		            "project = $1 AND method = '/coffer.v1.Projects/GetProject'",
		            1, vals);
		rows = atoll(PQgetvalue(r, 0, 0));
		counted = atoll(PQgetvalue(r, 0, 1));
		PQclear(r);
	}
	ck_assert_int_eq(counted, CALLS);
	ck_assert_int_le(rows, 8);
	ck_assert_int_ge(metric_value(server_metrics_port(s), "coffer_tokenless_refusals_total "),
	                 CALLS);
	server_stop(s, 1);
}
END_TEST

/* ---- cancelled calls ---- */

START_TEST(calls_the_client_cancels_count_as_cancelled)
{
	int port = server_metrics_port(srv);
	static const char want[] =
	        "coffer_calls_total{method=\"/coffer.v1.Projects/GetProject\",code=\"CANCELLED\"} ";
	static const char wrong[] = "coffer_calls_total{method=\"/coffer.v1.Projects/"
	                            "GetProject\",code=\"INVALID_ARGUMENT\"} ";
	long long before = metric_value(port, want), wrong_before = metric_value(port, wrong);
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	grpc_channel *c = grpc_channel_create(target, creds, NULL);
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	for (int i = 0; i < 3; i++) {
		/* the call starts, then goes away before its message was sent */
		grpc_call *call = grpc_channel_create_call(
		        c, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
		        grpc_slice_from_static_string("/coffer.v1.Projects/GetProject"), NULL,
		        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_SEND_INITIAL_METADATA;
		ck_assert_int_eq(grpc_call_start_batch(call, &op, 1, call, NULL), GRPC_CALL_OK);
		grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		usleep(50 * 1000);
		grpc_call_cancel(call, NULL);
		grpc_call_unref(call);
	}
	long long now = before;
	for (int i = 0; i < 50 && now < before + 3; i++) {
		usleep(100 * 1000);
		now = metric_value(port, want);
	}
	ck_assert_int_eq(now, before + 3);
	ck_assert_int_eq(metric_value(port, wrong), wrong_before);
	grpc_channel_destroy(c);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
	               .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	grpc_channel_credentials_release(creds);
}
END_TEST

START_TEST(audit_since_out_of_range_is_refused)
{
	Coffer__V1__ListAuditEventsRequest l = COFFER__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
	Google__Protobuf__Timestamp since = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	since.seconds = INT64_MAX / 10;
	l.since = &since;
	EXPECT_CODE(coffer_v1_access_list_audit_events(
	                    ch, &l, (Coffer__V1__ListAuditEventsResponse **)&resp_, &err_),
	            COFFER_INVALID_ARGUMENT);
	since.seconds = 0;
	since.nanos = -1;
	EXPECT_CODE(coffer_v1_access_list_audit_events(
	                    ch, &l, (Coffer__V1__ListAuditEventsResponse **)&resp_, &err_),
	            COFFER_INVALID_ARGUMENT);
}
END_TEST

/* ---- libcoffer repeats only what is safe to repeat ---- */

START_TEST(the_client_repeats_only_what_is_safe)
{
	const coffer_method_desc *get = &coffer__v1__projects__service.methods[1];
	const coffer_method_desc *del = &coffer__v1__projects__service.methods[3];
	ck_assert_str_eq(get->name, "GetProject");
	ck_assert_str_eq(del->name, "DeleteProject");
	ck_assert(get->idempotent);
	ck_assert(!del->idempotent);
	ck_assert(coffer__retry_allowed(get, COFFER_UNAVAILABLE, false));
	/* a write after a transport failure may have committed: never again on its own */
	ck_assert(!coffer__retry_allowed(del, COFFER_UNAVAILABLE, false));
	/* unless the server said it wrote nothing */
	ck_assert(coffer__retry_allowed(del, COFFER_UNAVAILABLE, true));
	/* an unknown commit, and every refusal, are final */
	ck_assert(!coffer__retry_allowed(del, COFFER_UNKNOWN, true));
	ck_assert(!coffer__retry_allowed(get, COFFER_UNKNOWN, false));
	ck_assert(!coffer__retry_allowed(get, COFFER_PERMISSION_DENIED, false));
	ck_assert(!coffer__retry_allowed(get, COFFER_NOT_FOUND, true));
	/* Over the wire: a refusal is sent once, however many retries are allowed. */
	int port = server_metrics_port(srv);
	static const char nf[] =
	        "coffer_calls_total{method=\"/coffer.v1.Projects/GetProject\",code=\"NOT_FOUND\"} ";
	long long before = metric_value(port, nf);
	coffer_channel *c = channel_to(target, NULL, 5000, 4);
	Coffer__V1__GetProjectRequest g = COFFER__V1__GET_PROJECT_REQUEST__INIT;
	g.name = (char *)uniq("nowhere");
	EXPECT_CODE(coffer_v1_projects_get_project(c, &g, (Coffer__V1__Project **)&resp_, &err_),
	            COFFER_NOT_FOUND);
	coffer_channel_free(c);
	ck_assert_int_eq(metric_settled(port, nf, before + 1), before + 1);
}
END_TEST

TCase *tcase_hardening(void)
{
	TCase *tc = tcase_create("hardening");
	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, NULL, audit_log_mend);
	test_add(tc, a_commit_whose_answer_is_lost_is_unknown);
	test_add(tc, merge_dry_run_is_no_oracle_for_restricted_values);
	test_add(tc, resolve_names_are_capped_and_cheap);
	test_add(tc, project_limits_refuse_the_write_that_crosses_them);
	test_add(tc, a_second_server_on_a_busy_port_fails);
	test_add(tc, plaintext_stays_on_loopback_unless_asked);
	test_add(tc, idle_streams_without_a_token_do_not_starve_health);
	test_add(tc, clients_that_do_not_read_their_answers_do_not_hold_workers);
	test_add(tc, a_slow_scraper_does_not_hold_the_metrics_listener);
	test_add(tc, a_flood_without_tokens_is_limited_and_counted);
	test_add(tc, calls_the_client_cancels_count_as_cancelled);
	test_add(tc, audit_since_out_of_range_is_refused);
	test_add(tc, the_client_repeats_only_what_is_safe);
	return tc;
}
