/*
 * test_watch.c - Secrets/WatchSecrets through libcoffer's watch API, and Access/WhoAmI: a change
 * for every kind of write that moves the watched (environment, version), none for writes that do
 * not (another environment, the other version, a default under an override); the names filter;
 * resuming from a revision after a disconnect misses nothing; resync when the history cannot say;
 * who may watch; delivery from a write on another replica; one audit row per stream; streams per
 * token; a replica that stops ends its streams, and the watch goes on against another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "coffer/v1/access.stub.h"
#include "coffer/v1/environments.stub.h"
#include "coffer/v1/secrets.stub.h"
#include "helpers.h"

static struct server *wsrv[2];
static coffer_error err_sink;
static char waddr[2][64];

static void watch_servers_up(void)
{
	if (wsrv[0])
		return;
	for (int i = 0; i < 2; i++) {
		struct settings c2 = cfg;
		c2.watch_heartbeat_seconds = 1;
		wsrv[i] = start_replica(&c2, waddr[i], sizeof(waddr[i]));
	}
}

static void watch_servers_down(void)
{
	for (int i = 0; i < 2; i++) {
		server_stop(wsrv[i], 1);
		wsrv[i] = NULL;
	}
}

/* The names of the next change (joined by ","), "" when none comes within ms; "RESYNC" for a
 * resync. Fails the test on an error. */
static const char *next_change(coffer_watch *w, int ms)
{
	static char out[1024];
	coffer_change chg;
	coffer_error err;
	int rc = coffer_watch_next(w, ms, &chg, &err);
	ck_assert_msg(rc >= 0, "watch: %s %s", coffer_code_name(err.code), err.message);
	out[0] = '\0';
	if (rc == 0)
		return out;
	if (chg.resync)
		return "RESYNC";
	for (size_t i = 0; i < chg.n_changed; i++) {
		size_t n = strlen(out);
		snprintf(out + n, sizeof(out) - n, "%s%s", i ? "," : "", chg.changed[i]);
	}
	return out;
}

static coffer_watch *watch_as(coffer_channel *c, const char *p, const char *env,
                              coffer_version version, const char *const *names, size_t n,
                              int64_t from)
{
	coffer_watch *w = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_watch_open(c, p, env, version, names, n, from, &w, &err), 0);
	/* The first message says where it starts (a heartbeat, not a change): once it is in, the
	 * stream is open and sees every later write. */
	for (int i = 0; i < 100 && coffer_watch_revision(w) == 0; i++)
		ck_assert_str_eq(next_change(w, 100), "");
	ck_assert_int_gt(coffer_watch_revision(w), 0);
	return w;
}

static void admin_call_ok(int rc, const coffer_error *err)
{
	ck_assert_msg(rc == 0, "%s %s", coffer_code_name(err->code), err->message);
}

static void update(coffer_channel *a, const char *p, const char *name, const char *value,
                   int visibility)
{
	Coffer__V1__UpdateSecretRequest req = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	req.project = (char *)p;
	req.name = (char *)name;
	if (value) {
		req.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
		req.value = (char *)value;
	}
	req.visibility = visibility;
	Coffer__V1__Secret *s = NULL;
	coffer_error err;
	admin_call_ok(coffer_v1_secrets_update_secret(a, &req, &s, &err), &err);
	protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void create(coffer_channel *a, const char *p, const char *name)
{
	Coffer__V1__CreateSecretRequest req = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	req.project = (char *)p;
	req.name = (char *)name;
	req.value = "v";
	req.description = "";
	Coffer__V1__Secret *s = NULL;
	coffer_error err;
	admin_call_ok(coffer_v1_secrets_create_secret(a, &req, &s, &err), &err);
	protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void delete_secret(coffer_channel *a, const char *p, const char *name)
{
	Coffer__V1__DeleteSecretRequest req = COFFER__V1__DELETE_SECRET_REQUEST__INIT;
	req.project = (char *)p;
	req.name = (char *)name;
	Google__Protobuf__Empty *e = NULL;
	coffer_error err;
	admin_call_ok(coffer_v1_secrets_delete_secret(a, &req, &e, &err), &err);
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void env(coffer_channel *a, const char *p, const char *name)
{
	Coffer__V1__CreateEnvironmentRequest req = COFFER__V1__CREATE_ENVIRONMENT_REQUEST__INIT;
	req.project = (char *)p;
	req.name = (char *)name;
	req.description = "";
	Coffer__V1__Environment *e = NULL;
	coffer_error err;
	admin_call_ok(coffer_v1_environments_create_environment(a, &req, &e, &err), &err);
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void override(coffer_channel *a, const char *p, const char *e, int version, const char *name,
                     const char *value)
{
	coffer_error err;
	if (value) {
		Coffer__V1__SetOverrideRequest req = COFFER__V1__SET_OVERRIDE_REQUEST__INIT;
		req.project = (char *)p;
		req.environment = (char *)e;
		req.version = version;
		req.secret = (char *)name;
		req.value = (char *)value;
		Coffer__V1__Override *o = NULL;
		admin_call_ok(coffer_v1_environments_set_override(a, &req, &o, &err), &err);
		protobuf_c_message_free_unpacked(&o->base, NULL);
	} else {
		Coffer__V1__DeleteOverrideRequest req = COFFER__V1__DELETE_OVERRIDE_REQUEST__INIT;
		req.project = (char *)p;
		req.environment = (char *)e;
		req.version = version;
		req.secret = (char *)name;
		Google__Protobuf__Empty *x = NULL;
		admin_call_ok(coffer_v1_environments_delete_override(a, &req, &x, &err), &err);
		protobuf_c_message_free_unpacked(&x->base, NULL);
	}
}

#define DRAFT COFFER_VERSION_DRAFT
#define LIVE  COFFER_VERSION_LIVE

START_TEST(a_change_for_every_write_that_moves_what_is_watched)
{
	watch_servers_up();
	const char *p = uniq("watch");
	project_with(waddr[0], p, "s0");
	coffer_channel *a = to(waddr[0], access_admin_token(), 20000);
	create(a, p, "T");
	env(a, p, "staging");
	env(a, p, "feature");
	char token[128], id[32];
	runtime_token(waddr[0], p, token, id);
	coffer_channel *rt = to(waddr[0], token, 20000);
	coffer_watch *w = watch_as(rt, p, "staging", DRAFT, NULL, 0, 0);

	update(a, p, "S", "s1", 0); /* a default it does not override */
	ck_assert_str_eq(next_change(w, 5000), "S");
	override(a, p, "staging", DRAFT, "T", "t-draft"); /* its own override */
	ck_assert_str_eq(next_change(w, 5000), "T");
	override(a, p, "staging", LIVE, "S", "s-live");     /* the other version: nothing */
	override(a, p, "feature", DRAFT, "S", "s-feature"); /* another environment: nothing */
	update(a, p, "T", "t-default", 0); /* a default under its override: nothing */
	ck_assert_str_eq(next_change(w, 700), "");
	update(a, p, "S", NULL, COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED); /* visibility */
	ck_assert_str_eq(next_change(w, 5000), "S");
	override(a, p, "staging", DRAFT, "T", NULL); /* back to the default */
	ck_assert_str_eq(next_change(w, 5000), "T");
	create(a, p, "U");
	ck_assert_str_eq(next_change(w, 5000), "U");
	delete_secret(a, p, "U");
	ck_assert_str_eq(next_change(w, 5000), "U");
	/* A merge into it: feature's overrides (S draft) replace staging's of both versions. */
	Coffer__V1__MergeEnvironmentResponse *m = NULL;
	coffer_error err;
	Coffer__V1__MergeEnvironmentRequest mr = COFFER__V1__MERGE_ENVIRONMENT_REQUEST__INIT;
	mr.project = (char *)p;
	mr.source = "feature";
	mr.target = "staging";
	admin_call_ok(coffer_v1_environments_merge_environment(a, &mr, &m, &err), &err);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	ck_assert_str_eq(next_change(w, 5000), "S");
	/* Heartbeats keep coming and are not changes. */
	ck_assert_str_eq(next_change(w, 2500), "");
	coffer_watch_close(w);
	coffer_channel_free(rt);
	coffer_channel_free(a);
}
END_TEST

START_TEST(names_filter_and_resume_after_a_disconnect)
{
	watch_servers_up();
	const char *p = uniq("resume");
	project_with(waddr[0], p, "a");
	coffer_channel *a = to(waddr[0], access_admin_token(), 20000);
	create(a, p, "T");
	char token[128], id[32];
	runtime_token(waddr[0], p, token, id);
	coffer_channel *rt = to(waddr[0], token, 20000);
	const char *only_t[] = {"T"};
	coffer_watch *w = watch_as(rt, p, "main", LIVE, only_t, 1, 0);
	update(a, p, "S", "b", 0);
	update(a, p, "T", "b", 0);
	ck_assert_str_eq(next_change(w, 5000), "T"); /* S is not asked for */
	int64_t seen = coffer_watch_revision(w);
	coffer_watch_close(w);
	/* While no one watches: */
	update(a, p, "S", "c", 0);
	update(a, p, "T", "c", 0);
	create(a, p, "V");
	/* Resuming from the last revision seen: every change since, folded into one. */
	coffer_watch *r = NULL;
	ck_assert_int_eq(coffer_watch_open(rt, p, "main", LIVE, NULL, 0, seen, &r, &err_sink), 0);
	ck_assert_str_eq(next_change(r, 5000), "S,T,V");
	ck_assert_int_gt(coffer_watch_revision(r), seen);
	/* From a revision the project never had: everything again. */
	coffer_watch *f = NULL;
	ck_assert_int_eq(coffer_watch_open(rt, p, "main", LIVE, NULL, 0, 100000, &f, &err_sink), 0);
	ck_assert_str_eq(next_change(f, 5000), "RESYNC");
	coffer_watch_close(f);
	coffer_watch_close(r);
	coffer_channel_free(rt);
	coffer_channel_free(a);
}
END_TEST

START_TEST(who_may_watch)
{
	watch_servers_up();
	const char *p = uniq("wscope"), *other = uniq("wother");
	project_with(waddr[0], p, "a");
	project_with(waddr[0], other, "a");
	coffer_channel *a = to(waddr[0], access_admin_token(), 20000);
	/* Tokens: runtime of live only, viewer of p, editor of another project. */
	struct {
		int role;
		const char *project;
		int version; /* 0: every version */
		int want;    /* the code a watch of main/draft gets */
	} cases[] = {
	        {COFFER__V1__ROLE__ROLE_RUNTIME, NULL, LIVE, COFFER_PERMISSION_DENIED},
	        {COFFER__V1__ROLE__ROLE_RUNTIME, NULL, DRAFT, COFFER_OK},
	        {COFFER__V1__ROLE__ROLE_VIEWER, NULL, 0, COFFER_OK},
	        {COFFER__V1__ROLE__ROLE_EDITOR, NULL, 0, COFFER_OK},
	        {COFFER__V1__ROLE__ROLE_EDITOR, "other", 0, COFFER_PERMISSION_DENIED},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Coffer__V1__CreateTokenRequest req = COFFER__V1__CREATE_TOKEN_REQUEST__INIT;
		req.name = "watch-scope";
		req.role = cases[i].role;
		req.project = (char *)(cases[i].project ? other : p);
		Coffer__V1__Version v[1] = {cases[i].version};
		if (cases[i].version) {
			req.versions = v;
			req.n_versions = 1;
		}
		Coffer__V1__CreateTokenResponse *r = NULL;
		coffer_error err;
		admin_call_ok(coffer_v1_access_create_token(a, &req, &r, &err), &err);
		coffer_channel *c = to(waddr[0], r->secret, 20000);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		coffer_watch *w = NULL;
		ck_assert_int_eq(coffer_watch_open(c, p, "main", DRAFT, NULL, 0, 0, &w, &err), 0);
		coffer_change chg;
		int rc = coffer_watch_next(w, 2000, &chg, &err);
		if (cases[i].want == COFFER_OK)
			ck_assert_msg(rc == 0, "case %zu: %s %s", i, coffer_code_name(err.code),
			              err.message);
		else
			ck_assert_msg(rc < 0 && err.code == cases[i].want, "case %zu: got %d %s", i,
			              rc, coffer_code_name(err.code));
		coffer_watch_close(w);
		coffer_channel_free(c);
	}
	/* No token at all. */
	coffer_channel *anon = to(waddr[0], NULL, 20000);
	coffer_watch *w = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_watch_open(anon, p, "main", DRAFT, NULL, 0, 0, &w, &err), 0);
	coffer_change chg;
	ck_assert_int_lt(coffer_watch_next(w, 2000, &chg, &err), 0);
	ck_assert_int_eq(err.code, COFFER_UNAUTHENTICATED);
	coffer_watch_close(w);
	coffer_channel_free(anon);
	coffer_channel_free(a);
}
END_TEST

START_TEST(a_write_on_another_replica_reaches_the_watcher_and_opening_is_audited_once)
{
	watch_servers_up();
	const char *p = uniq("wrep");
	project_with(waddr[0], p, "a");
	char token[128], id[32];
	runtime_token(waddr[0], p, token, id);
	coffer_channel *rt = to(waddr[1], token, 20000);
	coffer_watch *w = watch_as(rt, p, "main", LIVE, NULL, 0, 0);
	for (int i = 0; i < 3; i++) {
		char v[16];
		snprintf(v, sizeof(v), "v%d", i);
		int64_t rev = write_s(waddr[0], p, v);
		ck_assert_str_eq(next_change(w, 5000), "S");
		ck_assert_int_eq(coffer_watch_revision(w), rev);
	}
	coffer_watch_close(w);
	coffer_channel_free(rt);
	/* One audit row for the stream: its opening, with the token, and never a value. */
	const char *vals[2] = {p, id};
	PGresult *r = sql("SELECT count(*), min(code) FROM audit_events WHERE project = $1 "
	                  "AND token_id = $2 AND method = '/coffer.v1.Secrets/WatchSecrets'",
	                  2, vals);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
	ck_assert_str_eq(PQgetvalue(r, 0, 1), "0");
	PQclear(r);
}
END_TEST

START_TEST(streams_count_against_their_token_and_end_with_their_replica)
{
	const char *p = uniq("wlimit");
	struct settings c2 = cfg;
	c2.max_watches_per_token = 2;
	char addr[64];
	struct server *s = start_replica(&c2, addr, sizeof(addr));
	project_with(addr, p, "a");
	char token[128], id[32];
	runtime_token(addr, p, token, id);
	coffer_channel *rt = to(addr, token, 20000);
	coffer_watch *w1 = watch_as(rt, p, "main", LIVE, NULL, 0, 0);
	coffer_watch *w2 = watch_as(rt, p, "main", DRAFT, NULL, 0, 0);
	coffer_watch *w3 = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_watch_open(rt, p, "main", LIVE, NULL, 0, 0, &w3, &err), 0);
	coffer_change chg;
	ck_assert_int_lt(coffer_watch_next(w3, 3000, &chg, &err), 0);
	ck_assert_int_eq(err.code, COFFER_RESOURCE_EXHAUSTED);
	coffer_watch_close(w3);
	/* The replica stops: its streams end, and the watches try again instead of failing. */
	server_stop(s, 1);
	ck_assert_int_eq(coffer_watch_next(w1, 500, &chg, &err), 0);
	ck_assert_int_eq(coffer_watch_next(w2, 500, &chg, &err), 0);
	coffer_watch_close(w1);
	coffer_watch_close(w2);
	coffer_channel_free(rt);
}
END_TEST

START_TEST(who_am_i)
{
	watch_servers_up();
	const char *p = uniq("whoami");
	project_with(waddr[0], p, "a");
	char token[128], id[32];
	runtime_token(waddr[0], p, token, id);
	coffer_channel *rt = to(waddr[0], token, 20000);
	Coffer__V1__WhoAmIRequest req = COFFER__V1__WHO_AM_IREQUEST__INIT;
	Coffer__V1__Token *t = NULL;
	coffer_error err;
	admin_call_ok(coffer_v1_access_who_am_i(rt, &req, &t, &err), &err);
	ck_assert_str_eq(t->id, id);
	ck_assert_str_eq(t->project, p);
	ck_assert_int_eq(t->role, COFFER__V1__ROLE__ROLE_RUNTIME);
	protobuf_c_message_free_unpacked(&t->base, NULL);
	coffer_channel_free(rt);
	coffer_channel *anon = to(waddr[0], NULL, 20000);
	ck_assert_int_ne(coffer_v1_access_who_am_i(anon, &req, &t, &err), 0);
	ck_assert_int_eq(err.code, COFFER_UNAUTHENTICATED);
	coffer_channel_free(anon);
}
END_TEST

TCase *tcase_watch(void)
{
	TCase *tc = tcase_create("watch");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, NULL, watch_servers_down);
	test_add(tc, a_change_for_every_write_that_moves_what_is_watched);
	test_add(tc, names_filter_and_resume_after_a_disconnect);
	test_add(tc, who_may_watch);
	test_add(tc, a_write_on_another_replica_reaches_the_watcher_and_opening_is_audited_once);
	test_add(tc, streams_count_against_their_token_and_end_with_their_replica);
	test_add(tc, who_am_i);
	return tc;
}
