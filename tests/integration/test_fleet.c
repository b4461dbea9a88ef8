/*
 * test_fleet.c - what fleets do to a replica: a burst of hundreds of WatchSecrets streams opened at
 * once (none fails, a unary call is not held up behind them, a write reaches every one, the
 * replica still stops within its grace); the per-token limit for streams opened at once; a
 * stream ends when its token is revoked or expires, or its project is deleted, and never follows
 * a project made again under the same name; writes that come faster than a watcher's pass still
 * end with the last revision delivered.
 *
 * The streams are driven with gRPC core directly, many on one completion queue, over several
 * connections (a connection carries 100 streams at most).
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_run.h"
#include "coffer/v1/access.stub.h"
#include "coffer/v1/projects.stub.h"
#include "coffer/v1/secrets.stub.h"
#include "helpers.h"

static int64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- many streams on one queue ---- */

enum { T_READ, T_STATUS, T_START };

struct fleet_tag {
	int kind;  /* T_READ, T_STATUS, T_START */
	int index; /* the stream */
};

struct fleet_stream {
	grpc_call *call;
	grpc_byte_buffer *recv;                /* the message being read */
	grpc_metadata_array initial, trailing; /* metadata */
	grpc_status_code status;               /* once ended */
	grpc_slice details;                    /* its message */
	struct fleet_tag tags[3];              /* read, status, start */
	int64_t revision;                      /* the last message's */
	int messages;                          /* received */
	char changed[256];                     /* the last change's names, joined by "," */
	bool ended;                            /* the status came */
};

struct fleet {
	grpc_completion_queue *cq;
	grpc_channel **ch; /* connections */
	int n_ch;
	struct fleet_stream *s;
	int n;
	int outstanding; /* batches not completed */
};

static grpc_channel *connection(const char *addr)
{
	/* A channel of its own (not the shared subchannel pool): one connection each. */
	grpc_arg args[1] = {{.type = GRPC_ARG_INTEGER,
	                     .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
	                     .value.integer = 1}};
	grpc_channel_args ca = {1, args};
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	grpc_channel *c = grpc_channel_create(addr, creds, &ca);
	grpc_channel_credentials_release(creds);
	return c;
}

static void post_read(struct fleet *f, int i)
{
	grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
	op.data.recv_message.recv_message = &f->s[i].recv;
	ck_assert_int_eq(grpc_call_start_batch(f->s[i].call, &op, 1, &f->s[i].tags[T_READ], NULL),
	                 GRPC_CALL_OK);
	f->outstanding++;
}

/* Opens n streams of (p, env, version) from `from` over n_ch connections to addr, all at once
 * (nothing is read before the last is asked for); the streams of connection k use tokens[k %
 * n_tokens]. */
static void fleet_open_as(struct fleet *f, const char *addr, int n_ch, int n,
                          const char *const *tokens, int n_tokens, const char *p, const char *env,
                          int version, int64_t from)
{
	memset(f, 0, sizeof(*f));
	f->cq = grpc_completion_queue_create_for_next(NULL);
	f->n_ch = n_ch;
	f->ch = calloc((size_t)n_ch, sizeof(*f->ch));
	for (int k = 0; k < n_ch; k++)
		f->ch[k] = connection(addr);
	f->n = n;
	f->s = calloc((size_t)n, sizeof(*f->s));
	Coffer__V1__WatchSecretsRequest req = COFFER__V1__WATCH_SECRETS_REQUEST__INIT;
	req.project = (char *)p;
	req.environment = (char *)env;
	req.version = version;
	req.from_revision = from;
	size_t len = protobuf_c_message_get_packed_size(&req.base);
	uint8_t *buf = malloc(len + 1);
	protobuf_c_message_pack(&req.base, buf);
	grpc_metadata *md = calloc((size_t)n_tokens, sizeof(*md));
	for (int k = 0; k < n_tokens; k++) {
		char bearer[160];
		snprintf(bearer, sizeof(bearer), "Bearer %s", tokens[k]);
		md[k] = (grpc_metadata){.key = grpc_slice_from_static_string("authorization"),
		                        .value = grpc_slice_from_copied_string(bearer)};
	}
	for (int i = 0; i < n; i++) {
		struct fleet_stream *s = &f->s[i];
		for (int k = 0; k < 3; k++)
			s->tags[k] = (struct fleet_tag){k, i};
		s->call = grpc_channel_create_call(
		        f->ch[i % n_ch], NULL, GRPC_PROPAGATE_DEFAULTS, f->cq,
		        grpc_slice_from_static_string("/coffer.v1.Secrets/WatchSecrets"), NULL,
		        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		grpc_metadata_array_init(&s->initial);
		grpc_metadata_array_init(&s->trailing);
		grpc_slice body = grpc_slice_from_copied_buffer((const char *)buf, len);
		grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&body, 1);
		grpc_slice_unref(body);
		grpc_op ops[4];
		memset(ops, 0, sizeof(ops));
		ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[0].data.send_initial_metadata.count = 1;
		ops[0].data.send_initial_metadata.metadata = &md[(i % n_ch) % n_tokens];
		ops[1].op = GRPC_OP_SEND_MESSAGE;
		ops[1].data.send_message.send_message = bb;
		ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
		ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
		ck_assert_int_eq(grpc_call_start_batch(s->call, ops, 4, &s->tags[T_START], NULL),
		                 GRPC_CALL_OK);
		grpc_byte_buffer_destroy(bb);
		grpc_op st = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
		st.data.recv_status_on_client.trailing_metadata = &s->trailing;
		st.data.recv_status_on_client.status = &s->status;
		st.data.recv_status_on_client.status_details = &s->details;
		ck_assert_int_eq(grpc_call_start_batch(s->call, &st, 1, &s->tags[T_STATUS], NULL),
		                 GRPC_CALL_OK);
		f->outstanding += 2;
		post_read(f, i);
	}
	for (int k = 0; k < n_tokens; k++)
		grpc_slice_unref(md[k].value);
	free(md);
	free(buf);
}

/* The same with one token for every stream. */
static void fleet_open(struct fleet *f, const char *addr, int n_ch, int n, const char *token,
                       const char *p, const char *env, int version, int64_t from)
{
	fleet_open_as(f, addr, n_ch, n, &token, 1, p, env, version, from);
}

/* Takes events for up to ms. */
static void fleet_pump(struct fleet *f, int ms)
{
	int64_t until = mono_ms() + ms;
	for (;;) {
		int64_t left = until - mono_ms();
		if (left < 0)
			left = 0;
		grpc_event ev = grpc_completion_queue_next(
		        f->cq,
		        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		                     gpr_time_from_millis(left, GPR_TIMESPAN)),
		        NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			return;
		f->outstanding--;
		struct fleet_tag *t = ev.tag;
		struct fleet_stream *s = &f->s[t->index];
		if (t->kind == T_STATUS) {
			s->ended = true;
		} else if (t->kind == T_READ && s->recv) {
			grpc_byte_buffer_reader r;
			ck_assert(grpc_byte_buffer_reader_init(&r, s->recv));
			grpc_slice all = grpc_byte_buffer_reader_readall(&r);
			grpc_byte_buffer_reader_destroy(&r);
			Coffer__V1__SecretsChange *m = coffer__v1__secrets_change__unpack(
			        NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
			grpc_slice_unref(all);
			grpc_byte_buffer_destroy(s->recv);
			s->recv = NULL;
			ck_assert_ptr_nonnull(m);
			s->revision = m->revision;
			s->messages++;
			if (!m->heartbeat) {
				s->changed[0] = '\0';
				for (size_t k = 0; k < m->n_changed; k++) {
					size_t len = strlen(s->changed);
					snprintf(s->changed + len, sizeof(s->changed) - len, "%s%s",
					         k ? "," : "", m->changed[k]);
				}
				if (m->resync)
					snprintf(s->changed, sizeof(s->changed), "RESYNC");
			}
			coffer__v1__secrets_change__free_unpacked(m, NULL);
			post_read(f, t->index);
		}
		if (left == 0)
			return;
	}
}

/* Pumps until every stream has at least `messages` messages and a revision >= revision, or one
 * ends, or ms pass; how many streams got there. */
static int fleet_wait(struct fleet *f, int messages, int64_t revision, int ms)
{
	int64_t until = mono_ms() + ms;
	for (;;) {
		int ok = 0, ended = 0;
		for (int i = 0; i < f->n; i++) {
			ok += f->s[i].messages >= messages && f->s[i].revision >= revision;
			ended += f->s[i].ended;
		}
		if (ok == f->n || ended > 0 || mono_ms() >= until)
			return ok;
		fleet_pump(f, 50);
	}
}

/* Streams that ended, and with which code (the first one seen) into *code. */
static int fleet_ended(struct fleet *f, grpc_status_code *code, char *msg, size_t cap)
{
	int n = 0;
	for (int i = 0; i < f->n; i++)
		if (f->s[i].ended) {
			if (n++ == 0) {
				*code = f->s[i].status;
				snprintf(msg, cap, "%.*s", (int)GRPC_SLICE_LENGTH(f->s[i].details),
				         (const char *)GRPC_SLICE_START_PTR(f->s[i].details));
			}
		}
	return n;
}

static void fleet_close(struct fleet *f)
{
	for (int i = 0; i < f->n; i++)
		if (!f->s[i].ended)
			grpc_call_cancel(f->s[i].call, NULL);
	int64_t until = mono_ms() + 10000;
	while (f->outstanding > 0 && mono_ms() < until)
		fleet_pump(f, 100);
	ck_assert_int_eq(f->outstanding, 0);
	for (int i = 0; i < f->n; i++) {
		struct fleet_stream *s = &f->s[i];
		grpc_metadata_array_destroy(&s->initial);
		grpc_metadata_array_destroy(&s->trailing);
		grpc_slice_unref(s->details);
		grpc_call_unref(s->call);
	}
	for (int k = 0; k < f->n_ch; k++)
		grpc_channel_destroy(f->ch[k]);
	grpc_completion_queue_shutdown(f->cq);
	while (grpc_completion_queue_next(f->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(f->cq);
	free(f->s);
	free(f->ch);
}

/* ---- the cases ---- */

START_TEST(a_burst_of_500_watches_opens_without_a_failure_and_holds_up_no_call)
{
	/* The default pool (8 connections): the burst must not need more. */
	struct settings c = cfg;
	c.max_watches_per_token = 1000;
	c.max_streams = 2000;
	c.grace_seconds = 2;
	char addr[64];
	struct server *s = start_replica(&c, addr, sizeof(addr));
	const char *p = uniq("burst");
	project_with(addr, p, "v0");
	/* Ten pods' tokens, none cached yet: the first openings of each read it from the
	 * database. */
	char tokens[10][128], ids[10][32];
	const char *tok[10];
	for (int k = 0; k < 10; k++) {
		runtime_token(addr, p, tokens[k], ids[k]);
		tok[k] = tokens[k];
	}
	const char *token = tokens[0];
	struct fleet f;
	fleet_open_as(&f, addr, 10, 500, tok, 10, p, "main", COFFER_VERSION_LIVE, 0);
	/* Meanwhile a write and a resolve go through. */
	write_s(addr, p, "during");
	struct resolved r;
	coffer_channel *rt = to(addr, token, 10000);
	Coffer__V1__ResolveSecretsRequest rq = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	rq.project = (char *)p;
	rq.environment = "main";
	rq.version = COFFER__V1__VERSION__VERSION_LIVE;
	coffer_error err;
	ck_assert_msg(coffer_v1_secrets_resolve_secrets(rt, &rq, &r.resp, &err) == 0,
	              "resolve during the burst: %s %s", coffer_code_name(err.code), err.message);
	resolved_clear(&r);
	coffer_channel_free(rt);
	/* Every stream opens (its first message), none fails. */
	int open = fleet_wait(&f, 1, 1, 60000);
	grpc_status_code code = 0;
	char msg[256] = "";
	int ended = fleet_ended(&f, &code, msg, sizeof(msg));
	ck_assert_msg(ended == 0, "%d of 500 streams ended, the first with %d: %s", ended, code,
	              msg);
	ck_assert_int_eq(open, 500);
	ck_assert_int_eq((int)metric_value(server_metrics_port(s), "coffer_watch_streams "), 500);
	/* One write reaches every stream, with its revision. */
	int64_t rev = write_s(addr, p, "after");
	ck_assert_int_eq(fleet_wait(&f, 2, rev, 30000), 500);
	for (int i = 0; i < f.n; i++)
		ck_assert_str_eq(f.s[i].changed, "S");
	/* One audit row per stream, all committed. */
	const char *vals[1] = {p};
	PGresult *q = sql("SELECT count(*) FROM audit_events WHERE project = $1 "
	                  "AND method = '/coffer.v1.Secrets/WatchSecrets' AND code = 0",
	                  1, vals);
	ck_assert_str_eq(PQgetvalue(q, 0, 0), "500");
	PQclear(q);
	/* The replica stops within its grace, ending every stream so that clients move on. */
	int64_t t0 = mono_ms();
	server_stop(s, c.grace_seconds);
	int64_t took = mono_ms() - t0;
	ck_assert_msg(took < (c.grace_seconds + 5) * 1000, "the stop took %lld ms",
	              (long long)took);
	fleet_pump(&f, 2000);
	ck_assert_int_eq(fleet_ended(&f, &code, msg, sizeof(msg)), 500);
	ck_assert_int_eq(code, GRPC_STATUS_UNAVAILABLE);
	fleet_close(&f);
}
END_TEST

START_TEST(the_per_token_limit_holds_for_streams_opened_at_once)
{
	struct settings c = cfg;
	c.max_watches_per_token = 2;
	char addr[64];
	struct server *s = start_replica(&c, addr, sizeof(addr));
	const char *p = uniq("atonce");
	project_with(addr, p, "v0");
	char token[128], id[32];
	runtime_token(addr, p, token, id);
	struct fleet f;
	fleet_open(&f, addr, 1, 10, token, p, "main", COFFER_VERSION_LIVE, 0);
	int64_t until = mono_ms() + 20000;
	int open = 0, refused = 0;
	while (mono_ms() < until && open + refused < 10) {
		fleet_pump(&f, 100);
		open = refused = 0;
		for (int i = 0; i < f.n; i++) {
			open += f.s[i].messages > 0 && !f.s[i].ended;
			refused += f.s[i].ended && f.s[i].status == GRPC_STATUS_RESOURCE_EXHAUSTED;
		}
	}
	ck_assert_int_eq(open, 2);
	ck_assert_int_eq(refused, 8);
	fleet_close(&f);
	server_stop(s, 1);
}
END_TEST

/* Opens one stream and waits for its first message. */
static void one_stream(struct fleet *f, const char *addr, const char *token, const char *p)
{
	fleet_open(f, addr, 1, 1, token, p, "main", COFFER_VERSION_LIVE, 0);
	ck_assert_int_eq(fleet_wait(f, 1, 1, 10000), 1);
}

/* Waits until the one stream ends; its code (and message into msg). */
static grpc_status_code ends_with(struct fleet *f, int ms, char *msg, size_t cap)
{
	int64_t until = mono_ms() + ms;
	while (!f->s[0].ended && mono_ms() < until)
		fleet_pump(f, 100);
	ck_assert_msg(f->s[0].ended, "the stream is still open after %d ms", ms);
	grpc_status_code code = 0;
	fleet_ended(f, &code, msg, cap);
	return code;
}

START_TEST(a_stream_ends_with_its_token_or_its_project)
{
	struct settings c = cfg;
	c.watch_heartbeat_seconds = 1;
	char addr[2][64];
	struct server *s[2];
	for (int i = 0; i < 2; i++)
		s[i] = start_replica(&c, addr[i], sizeof(addr[i]));
	char msg[256];
	/* Revoked on the other replica. */
	const char *p = uniq("revoked");
	project_with(addr[0], p, "v0");
	char token[128], id[32];
	runtime_token(addr[0], p, token, id);
	struct fleet f;
	one_stream(&f, addr[1], token, p);
	coffer_channel *a = to(addr[0], access_admin_token(), 20000);
	Coffer__V1__RevokeTokenRequest rv = COFFER__V1__REVOKE_TOKEN_REQUEST__INIT;
	rv.id = id;
	Google__Protobuf__Empty *empty = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_access_revoke_token(a, &rv, &empty, &err), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
	ck_assert_int_eq(ends_with(&f, 5000, msg, sizeof(msg)), GRPC_STATUS_UNAUTHENTICATED);
	ck_assert_ptr_nonnull(strstr(msg, "revoked"));
	fleet_close(&f);
	/* Expired. */
	Coffer__V1__CreateTokenRequest ct = COFFER__V1__CREATE_TOKEN_REQUEST__INIT;
	ct.name = "short-lived";
	ct.role = COFFER__V1__ROLE__ROLE_RUNTIME;
	ct.project = (char *)p;
	ct.ttl_seconds = 2;
	Coffer__V1__CreateTokenResponse *tr = NULL;
	ck_assert_int_eq(coffer_v1_access_create_token(a, &ct, &tr, &err), 0);
	one_stream(&f, addr[1], tr->secret, p);
	protobuf_c_message_free_unpacked(&tr->base, NULL);
	ck_assert_int_eq(ends_with(&f, 6000, msg, sizeof(msg)), GRPC_STATUS_UNAUTHENTICATED);
	ck_assert_ptr_nonnull(strstr(msg, "expired"));
	fleet_close(&f);
	/* The project is deleted (and made again under its name): an admin's stream ends and does
	 * not follow into the new project. */
	const char *q = uniq("deleted");
	project_with(addr[0], q, "v0");
	one_stream(&f, addr[1], access_admin_token(), q);
	Coffer__V1__DeleteProjectRequest dp = COFFER__V1__DELETE_PROJECT_REQUEST__INIT;
	dp.name = (char *)q;
	ck_assert_int_eq(coffer_v1_projects_delete_project(a, &dp, &empty, &err), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
	project_with(addr[0], q, "new");
	ck_assert_int_eq(ends_with(&f, 5000, msg, sizeof(msg)), GRPC_STATUS_NOT_FOUND);
	ck_assert_msg(f.s[0].messages >= 1 && strcmp(f.s[0].changed, "RESYNC") != 0,
	              "the stream followed into the new project");
	fleet_close(&f);
	coffer_channel_free(a);
	for (int i = 0; i < 2; i++)
		server_stop(s[i], 1);
}
END_TEST

struct writer {
	const char *addr, *p;
	int n;        /* writes */
	int64_t last; /* the last revision written */
};

static void *write_fast(void *arg)
{
	struct writer *w = arg;
	coffer_channel *a = to(w->addr, access_admin_token(), 20000);
	for (int i = 0; i < w->n; i++) {
		char v[32];
		snprintf(v, sizeof(v), "fast-%d", i);
		Coffer__V1__UpdateSecretRequest req = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
		req.project = (char *)w->p;
		req.name = "S";
		req.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
		req.value = v;
		Coffer__V1__Secret *s = NULL;
		coffer_error err;
		if (coffer_v1_secrets_update_secret(a, &req, &s, &err) == 0) {
			if (s->revision > w->last)
				w->last = s->revision;
			protobuf_c_message_free_unpacked(&s->base, NULL);
		}
	}
	coffer_channel_free(a);
	return NULL;
}

START_TEST(writes_faster_than_a_pass_end_with_the_last_revision_delivered)
{
	struct settings c = cfg;
	char addr[2][64];
	struct server *s[2];
	for (int i = 0; i < 2; i++)
		s[i] = start_replica(&c, addr[i], sizeof(addr[i]));
	const char *p = uniq("fast");
	project_with(addr[0], p, "v0");
	char token[128], id[32];
	runtime_token(addr[0], p, token, id);
	/* Watchers on both replicas; writes from two threads on both, as fast as they go. */
	struct fleet f[2];
	for (int i = 0; i < 2; i++) {
		fleet_open(&f[i], addr[i], 2, 20, token, p, "main", COFFER_VERSION_LIVE, 0);
		ck_assert_int_eq(fleet_wait(&f[i], 1, 1, 10000), 20);
	}
	for (int round = 0; round < 3; round++) {
		struct writer w[2] = {{addr[0], p, 15, 0}, {addr[1], p, 15, 0}};
		pthread_t t[2];
		for (int i = 0; i < 2; i++)
			pthread_create(&t[i], NULL, write_fast, &w[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		int64_t last = w[0].last > w[1].last ? w[0].last : w[1].last;
		for (int i = 0; i < 2; i++)
			ck_assert_msg(fleet_wait(&f[i], 2, last, 10000) == 20,
			              "round %d: watchers on replica %d did not all hear revision "
			              "%lld",
			              round, i, (long long)last);
	}
	for (int i = 0; i < 2; i++) {
		fleet_close(&f[i]);
		server_stop(s[i], 1);
	}
}
END_TEST

TCase *tcase_fleet(void)
{
	TCase *tc = tcase_create("fleet");
	tcase_set_timeout(tc, 180);
	test_add(tc, a_burst_of_500_watches_opens_without_a_failure_and_holds_up_no_call);
	test_add(tc, the_per_token_limit_holds_for_streams_opened_at_once);
	test_add(tc, a_stream_ends_with_its_token_or_its_project);
	test_add(tc, writes_faster_than_a_pass_end_with_the_last_revision_delivered);
	return tc;
}
