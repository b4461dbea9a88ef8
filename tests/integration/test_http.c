/*
 * test_http.c - the read-only HTTP/JSON endpoint over real HTTP (libcurl) against real cofferd
 * servers: the values ResolveSecrets gives, byte for byte in JSON (escapes included), for the
 * whole set, a names filter and one secret with its source; each status mapping the endpoint can
 * reach (400, 401, 403, 404, 405, 429, 503) with a JSON error that names no value; restricted
 * values for runtime tokens only; one audit row per request with the HTTP peer; oversized heads
 * (431, 414), a client that dribbles its request, a client that opens too many connections; TLS
 * and mTLS with the gRPC settings; and the /metrics listener on the same library.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "coffer/v1/access.stub.h"
#include "coffer/v1/environments.stub.h"
#include "coffer/v1/secrets.stub.h"
#include "helpers.h"

static struct server *hsrv;
static char haddr[64];
static int hport;

static void http_server_up(void)
{
	if (hsrv)
		return;
	struct settings c2 = cfg;
	c2.http_listen = "127.0.0.1:0";
	c2.http_max_connections = 16; /* 4 per client address */
	hsrv = start_replica(&c2, haddr, sizeof(haddr));
	hport = server_http_port(hsrv);
	ck_assert_int_gt(hport, 0);
}

static void http_server_down(void)
{
	server_stop(hsrv, 1);
	hsrv = NULL;
}

struct got {
	long status;
	char *body;
	size_t len;
	char type[128];
	char etag[64];
	bool retryable;    /* coffer-retryable: true */
	char csp[512];     /* Content-Security-Policy */
	char referrer[64]; /* Referrer-Policy */
	char cookie[256];  /* Set-Cookie */
};

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct got *g = arg;
	size_t len = size * n;
	if (len > 6 && strncasecmp(p, "ETag: ", 6) == 0)
		snprintf(g->etag, sizeof(g->etag), "%.*s", (int)strcspn(p + 6, "\r\n"), p + 6);
	if (len >= 22 && strncasecmp(p, "coffer-retryable: true", 22) == 0)
		g->retryable = true;
	if (len > 25 && strncasecmp(p, "Content-Security-Policy: ", 25) == 0)
		snprintf(g->csp, sizeof(g->csp), "%.*s", (int)strcspn(p + 25, "\r\n"), p + 25);
	if (len > 12 && strncasecmp(p, "Set-Cookie: ", 12) == 0)
		snprintf(g->cookie, sizeof(g->cookie), "%.*s", (int)strcspn(p + 12, "\r\n"),
		         p + 12);
	if (len > 17 && strncasecmp(p, "Referrer-Policy: ", 17) == 0)
		snprintf(g->referrer, sizeof(g->referrer), "%.*s", (int)strcspn(p + 17, "\r\n"),
		         p + 17);
	return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct got *g = arg;
	char *b = realloc(g->body, g->len + size * n + 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b + g->len, p, size * n);
	g->body = b;
	g->len += size * n;
	g->body[g->len] = '\0';
	return size * n;
}

/* One request: method (NULL: GET), URL, bearer token (NULL: none), extra header (or NULL); TLS
 * files (NULL: none) for https URLs. */
static struct got request(const char *method, const char *url, const char *token,
                          const char *header, const char *ca, const char *cert, const char *key)
{
	struct got g = {0};
	CURL *c = curl_easy_init();
	ck_assert_ptr_nonnull(c);
	struct curl_slist *h = NULL;
	char auth[256];
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	if (header)
		h = curl_slist_append(h, header);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &g);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &g);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
	if (method)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	if (cert) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	}
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &g.status);
		char *type = NULL;
		curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
		snprintf(g.type, sizeof(g.type), "%s", type ? type : "");
	} else {
		g.status = -(long)rc;
	}
	if (g.body == NULL)
		g.body = calloc(1, 1);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return g;
}

/* A Connect call: POST path with a JSON body. */
static struct got connect_post(const char *path, const char *token, const char *json)
{
	struct got g = {0};
	CURL *c = curl_easy_init();
	ck_assert_ptr_nonnull(c);
	char auth[256], url[512];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", hport, path);
	struct curl_slist *h = curl_slist_append(NULL, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &g);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &g);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &g.status);
	if (g.body == NULL)
		g.body = calloc(1, 1);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return g;
}

static struct got get(const char *path, const char *token)
{
	char url[8192];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", hport, path);
	return request(NULL, url, token, NULL, NULL, NULL, NULL);
}

static void got_free(struct got *g)
{
	free(g->body);
	g->body = NULL;
}

static void put_secret(coffer_channel *a, const char *p, const char *name, const char *value,
                       bool restricted)
{
	Coffer__V1__CreateSecretRequest cs = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	cs.project = (char *)p;
	cs.name = (char *)name;
	cs.value = (char *)value;
	cs.description = "";
	if (restricted)
		cs.visibility = COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED;
	Coffer__V1__Secret *s = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_secrets_create_secret(a, &cs, &s, &err) == 0, "%s", err.message);
	protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void staging_override(coffer_channel *a, const char *p, const char *name, const char *value)
{
	Coffer__V1__CreateEnvironmentRequest ce = COFFER__V1__CREATE_ENVIRONMENT_REQUEST__INIT;
	ce.project = (char *)p;
	ce.name = "staging";
	ce.description = "";
	Coffer__V1__Environment *env = NULL;
	coffer_error err;
	if (coffer_v1_environments_create_environment(a, &ce, &env, &err) == 0)
		protobuf_c_message_free_unpacked(&env->base, NULL);
	Coffer__V1__SetOverrideRequest so = COFFER__V1__SET_OVERRIDE_REQUEST__INIT;
	so.project = (char *)p;
	so.environment = "staging";
	so.version = COFFER__V1__VERSION__VERSION_DRAFT;
	so.secret = (char *)name;
	so.value = (char *)value;
	Coffer__V1__Override *o = NULL;
	ck_assert_msg(coffer_v1_environments_set_override(a, &so, &o, &err) == 0, "%s",
	              err.message);
	protobuf_c_message_free_unpacked(&o->base, NULL);
}

/* The project every test reads: A plain, Q with every character JSON must escape, R restricted,
 * and an override of A in staging/draft. */
static const char *http_project(void)
{
	static char p[64];
	if (p[0])
		return p;
	snprintf(p, sizeof(p), "%s", uniq("http"));
	coffer_channel *a = to(haddr, access_admin_token(), 20000);
	Coffer__V1__CreateProjectRequest cp = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	cp.name = p;
	cp.description = "";
	Coffer__V1__Project *proj = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_projects_create_project(a, &cp, &proj, &err) == 0, "%s",
	              err.message);
	protobuf_c_message_free_unpacked(&proj->base, NULL);
	put_secret(a, p, "A", "alpha-canary-7f3e", false);
	put_secret(a, p, "Q", "q\"uote\\back\nline\ttab\x01 caf\xc3\xa9 \xe2\x82\xac", false);
	put_secret(a, p, "R", "restricted-canary-91c2", true);
	staging_override(a, p, "A", "alpha-staging-canary-2b8d");
	coffer_channel_free(a);
	return p;
}

/* The same set through gRPC's ResolveSecrets (libcoffer), as the JSON the endpoint must give:
 * built here from the snapshot with the escapes written out by hand for Q. */
static char *expected_json(const char *token, const char *p, const char *env, int version)
{
	coffer_channel_options o = {.target = haddr, .token = token, .timeout_ms = 20000};
	coffer_channel *c = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_channel_new(&o, &c, &err), 0);
	Coffer__V1__ResolveSecretsRequest r = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	r.project = (char *)p;
	r.environment = (char *)env;
	r.version = version;
	Coffer__V1__ResolveSecretsResponse *resp = NULL;
	ck_assert_msg(coffer_v1_secrets_resolve_secrets(c, &r, &resp, &err) == 0, "%s",
	              err.message);
	char *out = malloc(4096);
	int n = snprintf(out, 4096, "{\"revision\":%lld,\"secrets\":{", (long long)resp->revision);
	for (size_t i = 0; i < resp->n_secrets; i++) {
		const char *name = resp->secrets[i]->name, *v = resp->secrets[i]->value;
		if (strcmp(name, "Q") == 0) {
			ck_assert_str_eq(v,
			                 "q\"uote\\back\nline\ttab\x01 caf\xc3\xa9 \xe2\x82\xac");
			v = "q\\\"uote\\\\back\\nline\\ttab\\u0001 caf\xc3\xa9 \xe2\x82\xac";
		}
		n += snprintf(out + n, 4096 - (size_t)n, "%s\"%s\":\"%s\"", i ? "," : "", name, v);
	}
	snprintf(out + n, 4096 - (size_t)n, "}}");
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	coffer_channel_free(c);
	return out;
}

static void secrets_path(char *out, size_t cap, const char *p, const char *env, const char *version,
                         const char *rest)
{
	snprintf(out, cap, "/v1/projects/%s/environments/%s/versions/%s/secrets%s", p, env, version,
	         rest);
}

START_TEST(values_equal_resolve_secrets)
{
	http_server_up();
	const char *p = http_project();
	char rt[128];
	token_for(haddr, p, COFFER__V1__ROLE__ROLE_RUNTIME, NULL, 0, rt, NULL);
	char path[512];
	struct {
		const char *env, *version;
		int v;
	} cases[] = {{"main", "live", COFFER__V1__VERSION__VERSION_LIVE},
	             {"staging", "draft", COFFER__V1__VERSION__VERSION_DRAFT},
	             {"staging", "live", COFFER__V1__VERSION__VERSION_LIVE}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		secrets_path(path, sizeof(path), p, cases[i].env, cases[i].version, "");
		struct got g = get(path, rt);
		char *want = expected_json(rt, p, cases[i].env, cases[i].v);
		ck_assert_int_eq(g.status, 200);
		ck_assert_str_eq(g.type, "application/json");
		ck_assert_str_eq(g.body, want);
		free(want);
		got_free(&g);
	}
	/* A names filter: only those, in name order; an unknown name is simply absent. */
	secrets_path(path, sizeof(path), p, "staging", "draft", "?names=R,A,NOPE");
	struct got g = get(path, rt);
	ck_assert_int_eq(g.status, 200);
	int64_t rev = project_revision(p);
	char want[512];
	snprintf(want, sizeof(want),
	         "{\"revision\":%lld,\"secrets\":{\"A\":\"alpha-staging-canary-2b8d\","
	         "\"R\":\"restricted-canary-91c2\"}}",
	         (long long)rev);
	ck_assert_str_eq(g.body, want);
	got_free(&g);
	/* One secret, with where its value comes from. */
	secrets_path(path, sizeof(path), p, "staging", "draft", "/A");
	g = get(path, rt);
	snprintf(want, sizeof(want),
	         "{\"name\":\"A\",\"value\":\"alpha-staging-canary-2b8d\",\"revision\":%lld,"
	         "\"source\":\"override\"}",
	         (long long)rev);
	ck_assert_int_eq(g.status, 200);
	ck_assert_str_eq(g.body, want);
	got_free(&g);
	secrets_path(path, sizeof(path), p, "main", "live", "/A");
	g = get(path, rt);
	snprintf(want, sizeof(want),
	         "{\"name\":\"A\",\"value\":\"alpha-canary-7f3e\",\"revision\":%lld,"
	         "\"source\":\"default\"}",
	         (long long)rev);
	ck_assert_str_eq(g.body, want);
	got_free(&g);
}
END_TEST

/* A new project with S = value, a runtime token for it (rt, 128 bytes) and the path of its
 * main/live secrets (path, 512 bytes). */
static const char *project_for_http(const char *prefix, char *rt, char *path)
{
	http_server_up();
	const char *p = uniq(prefix);
	project_with(haddr, p, "v1");
	token_for(haddr, p, COFFER__V1__ROLE__ROLE_RUNTIME, NULL, 0, rt, NULL);
	secrets_path(path, 512, p, "main", "live", "");
	return p;
}

START_TEST(conditional_get_with_the_revision_as_etag)
{
	char rt[128], path[512], url[1024], inm[96];
	const char *p = project_for_http("etag", rt, path);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", hport, path);
	struct got g = request(NULL, url, rt, NULL, NULL, NULL, NULL);
	char want[64];
	snprintf(want, sizeof(want), "\"%lld\"", (long long)project_revision(p));
	ck_assert_int_eq(g.status, 200);
	ck_assert_str_eq(g.etag, want);
	got_free(&g);
	/* Nothing moved since: 304, no body, the same ETag. */
	snprintf(inm, sizeof(inm), "If-None-Match: %s", want);
	g = request(NULL, url, rt, inm, NULL, NULL, NULL);
	ck_assert_int_eq(g.status, 304);
	ck_assert_uint_eq(g.len, 0);
	ck_assert_str_eq(g.etag, want);
	got_free(&g);
	snprintf(inm, sizeof(inm), "If-None-Match: W/%s", want);
	g = request(NULL, url, rt, inm, NULL, NULL, NULL);
	ck_assert_int_eq(g.status, 304);
	got_free(&g);
	/* A write: the whole answer again, with the new revision. */
	int64_t rev = write_s(haddr, p, "v2");
	snprintf(inm, sizeof(inm), "If-None-Match: %s", want);
	g = request(NULL, url, rt, inm, NULL, NULL, NULL);
	snprintf(want, sizeof(want), "\"%lld\"", (long long)rev);
	ck_assert_int_eq(g.status, 200);
	ck_assert_str_eq(g.etag, want);
	ck_assert_ptr_nonnull(strstr(g.body, "\"S\":\"v2\""));
	got_free(&g);
	/* A list of ETags: 304 when the current one is among them. */
	snprintf(inm, sizeof(inm), "If-None-Match: \"1\", W/%s , \"x\"", want);
	g = request(NULL, url, rt, inm, NULL, NULL, NULL);
	ck_assert_int_eq(g.status, 304);
	got_free(&g);
	snprintf(inm, sizeof(inm), "If-None-Match: \"1\", \"%lld\"", (long long)rev - 1);
	g = request(NULL, url, rt, inm, NULL, NULL, NULL);
	ck_assert_int_eq(g.status, 200);
	got_free(&g);
	snprintf(inm, sizeof(inm), "If-None-Match: %s", want);
	/* A refused token gets no 304, whatever it claims to know. */
	g = request(NULL, url, "coffer_notarealtoken000000000000000000000000000000000000", inm,
	            NULL, NULL, NULL);
	ck_assert_int_eq(g.status, 401);
	got_free(&g);
}
END_TEST

/* status, and the JSON error's code; the body never holds a value of the project. */
static void expect_error(struct got g, long status, const char *code)
{
	char want[128];
	snprintf(want, sizeof(want), "{\"code\":\"%s\",\"message\":\"", code);
	ck_assert_msg(g.status == status, "status %ld, want %ld: %s", g.status, status, g.body);
	ck_assert_msg(strncmp(g.body, want, strlen(want)) == 0, "%s", g.body);
	ck_assert_str_eq(g.type, "application/json");
	ck_assert_ptr_null(strstr(g.body, "canary"));
	got_free(&g);
}

START_TEST(every_status_the_endpoint_reaches)
{
	http_server_up();
	const char *p = http_project();
	char rt[128], live_only[128], other_rt[128];
	token_for(haddr, p, COFFER__V1__ROLE__ROLE_RUNTIME, NULL, 0, rt, NULL);
	token_for(haddr, p, COFFER__V1__ROLE__ROLE_RUNTIME, "main",
	          COFFER__V1__VERSION__VERSION_LIVE, live_only, NULL);
	const char *other = uniq("httpother");
	project_with(haddr, other, "x");
	token_for(haddr, other, COFFER__V1__ROLE__ROLE_RUNTIME, NULL, 0, other_rt, NULL);
	char path[512];
	secrets_path(path, sizeof(path), p, "main", "live", "");
	expect_error(get(path, NULL), 401, "UNAUTHENTICATED");
	expect_error(get(path, "coffer_notarealtoken000000000000000000000000000000000000"), 401,
	             "UNAUTHENTICATED");
	expect_error(get(path, other_rt), 403, "PERMISSION_DENIED");
	/* The scheme is case-insensitive (RFC 7235); it must be Bearer. */
	char url[1024], auth[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", hport, path);
	snprintf(auth, sizeof(auth), "Authorization: bearer %s", rt);
	struct got g = request(NULL, url, NULL, auth, NULL, NULL, NULL);
	ck_assert_int_eq(g.status, 200);
	got_free(&g);
	snprintf(auth, sizeof(auth), "Authorization: Basic %s", rt);
	expect_error(request(NULL, url, NULL, auth, NULL, NULL, NULL), 401, "UNAUTHENTICATED");
	secrets_path(path, sizeof(path), p, "staging", "draft", "");
	expect_error(get(path, live_only), 403, "PERMISSION_DENIED"); /* out of its scope */
	/* The environment alone out of scope, and the version alone: each is checked. */
	char main_only[128];
	token_for(haddr, p, COFFER__V1__ROLE__ROLE_RUNTIME, "main", 0, main_only, NULL);
	secrets_path(path, sizeof(path), p, "staging", "live", "");
	expect_error(get(path, main_only), 403, "PERMISSION_DENIED");
	secrets_path(path, sizeof(path), p, "main", "live", "");
	g = get(path, main_only);
	ck_assert_int_eq(g.status, 200);
	got_free(&g);
	secrets_path(path, sizeof(path), p, "main", "draft", "");
	expect_error(get(path, live_only), 403, "PERMISSION_DENIED");
	secrets_path(path, sizeof(path), p, "main", "live", "/NOPE");
	expect_error(get(path, rt), 404, "NOT_FOUND");
	secrets_path(path, sizeof(path), p, "nowhere", "live", "");
	expect_error(get(path, rt), 404, "NOT_FOUND");
	expect_error(get("/v1/projects", rt), 404, "NOT_FOUND");
	expect_error(get("/", rt), 404, "NOT_FOUND");
	secrets_path(path, sizeof(path), p, "main", "staging", "");
	expect_error(get(path, rt), 400, "INVALID_ARGUMENT"); /* not a version */
	secrets_path(path, sizeof(path), p, "bad%20env!", "live", "");
	expect_error(get(path, rt), 400, "INVALID_ARGUMENT");
	secrets_path(path, sizeof(path), p, "main", "live", "/A?names=B");
	expect_error(get(path, rt), 400, "INVALID_ARGUMENT");
	snprintf(url, sizeof(url),
	         "http://127.0.0.1:%d/v1/projects/%s/environments/main/versions/"
	         "live/secrets",
	         hport, p);
	expect_error(request("POST", url, rt, NULL, NULL, NULL, NULL), 405, "UNIMPLEMENTED");
	expect_error(request("DELETE", url, rt, NULL, NULL, NULL, NULL), 405, "UNIMPLEMENTED");
	/* The audit log cannot be written: resolves fail closed, 503. */
	audit_log_break();
	secrets_path(path, sizeof(path), p, "main", "live", "");
	g = get(path, rt);
	audit_log_mend();
	expect_error(g, 503, "UNAVAILABLE");
	/* A token over its rate: 429. */
	struct settings c2 = cfg;
	c2.http_listen = "127.0.0.1:0";
	c2.rate_limit = 1;
	c2.rate_burst = 1;
	char addr[64];
	struct server *limited = start_replica(&c2, addr, sizeof(addr));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", server_http_port(limited), path);
	g = request(NULL, url, rt, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(g.status, 200);
	got_free(&g);
	expect_error(request(NULL, url, rt, NULL, NULL, NULL, NULL), 429, "RESOURCE_EXHAUSTED");
	server_stop(limited, 1);
}
END_TEST

START_TEST(restricted_values_go_to_runtime_tokens_only_and_each_request_is_audited)
{
	http_server_up();
	const char *p = http_project();
	char rt[128], rt_id[32], tok[128];
	token_for(haddr, p, COFFER__V1__ROLE__ROLE_RUNTIME, "main", 0, rt, rt_id);
	char path[512];
	secrets_path(path, sizeof(path), p, "main", "live", "/R");
	struct got g = get(path, rt);
	ck_assert_int_eq(g.status, 200);
	ck_assert_ptr_nonnull(strstr(g.body, "restricted-canary-91c2"));
	got_free(&g);
	int roles[] = {COFFER__V1__ROLE__ROLE_VIEWER, COFFER__V1__ROLE__ROLE_EDITOR};
	for (size_t i = 0; i < 2; i++) {
		token_for(haddr, p, roles[i], NULL, 0, tok, NULL);
		expect_error(get(path, tok), 403, "PERMISSION_DENIED");
	}
	expect_error(get(path, access_admin_token()), 403, "PERMISSION_DENIED");
	/* The runtime token's requests: one audit row each, as ResolveSecrets, with the HTTP
	 * peer and the environment and version, and never a value. */
	secrets_path(path, sizeof(path), p, "main", "live", "");
	g = get(path, rt);
	got_free(&g);
	const char *vals[2] = {p, rt_id};
	PGresult *r = sql("SELECT count(*), min(method), min(peer), min(environment), "
	                  "min(version), max(code) FROM audit_events WHERE project = $1 "
	                  "AND token_id = $2",
	                  2, vals);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "2");
	ck_assert_str_eq(PQgetvalue(r, 0, 1), "/coffer.v1.Secrets/ResolveSecrets");
	ck_assert_msg(strncmp(PQgetvalue(r, 0, 2), "ipv4:127.0.0.1:", 15) == 0, "%s",
	              PQgetvalue(r, 0, 2));
	ck_assert_str_eq(PQgetvalue(r, 0, 3), "main");
	ck_assert_str_eq(PQgetvalue(r, 0, 5), "0");
	PQclear(r);
	r = sql("SELECT count(*) FROM audit_events WHERE project = $1 AND (secret LIKE "
	        "'%canary%' OR environment LIKE '%canary%')",
	        1, vals);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
}
END_TEST

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Whether the server closed fd within ms. */
static bool closed_within(int fd, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char b[256];
	ssize_t n;
	while ((n = recv(fd, b, sizeof(b), 0)) > 0)
		;
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Whether fd is still open: nothing to read and no end of stream. */
static bool still_open(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Opens n connections that the server keeps. The server counts a closed connection until it has
 * cleaned it up, so a connection opened just after another closed may be refused for a moment:
 * then all are closed and opened again. */
static void hold_connections(int *fds, int n)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		for (int i = 0; i < n; i++)
			fds[i] = connect_to(hport);
		usleep(200 * 1000);
		bool all = true;
		for (int i = 0; i < n; i++)
			all = all && still_open(fds[i]);
		if (all)
			return;
		for (int i = 0; i < n; i++)
			close(fds[i]);
	}
	ck_abort_msg("the server did not keep %d connections from one address", n);
}

/* Sends a GET (without credentials) on fd and whether an HTTP answer comes back. */
static bool serves_a_request(int fd, const char *path)
{
	char req[700];
	int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len)
		return false;
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char b[16] = {0};
	return recv(fd, b, sizeof(b) - 1, 0) > 0 && strncmp(b, "HTTP/1.1 ", 9) == 0;
}

/* Sends head (and one byte of the body it announces) on a new connection: whether the answer
 * starts with status at once, and the server then closes the connection without waiting for the
 * rest of the body. */
static bool answered_without_the_body(const char *head, const char *status)
{
	int fd = connect_to(hport);
	bool ok = send(fd, head, strlen(head), MSG_NOSIGNAL) == (ssize_t)strlen(head) &&
	          send(fd, "x", 1, MSG_NOSIGNAL) == 1;
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char b[64] = {0};
	ok = ok && recv(fd, b, sizeof(b) - 1, 0) > 0 && strncmp(b, status, strlen(status)) == 0;
	ok = ok && closed_within(fd, 2000);
	close(fd);
	return ok;
}

/* Sends raw on a new connection and reads until the server closes it (or 3 s pass): how many
 * answers came, the first one's start into first (64 bytes), and whether it closed. */
static int answers_to(const char *raw, char *first, bool *closed)
{
	int fd = connect_to(hport);
	ck_assert_int_eq(send(fd, raw, strlen(raw), MSG_NOSIGNAL), (ssize_t)strlen(raw));
	struct timeval tv = {3, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char all[16384];
	size_t len = 0;
	ssize_t n = 0;
	while (len < sizeof(all) - 1 && (n = recv(fd, all + len, sizeof(all) - 1 - len, 0)) > 0)
		len += (size_t)n;
	all[len] = '\0';
	*closed = n == 0;
	close(fd);
	snprintf(first, 64, "%.63s", all);
	int count = 0;
	for (const char *p = all; (p = strstr(p, "HTTP/1.1 ")) != NULL; p += 9)
		count++;
	return count;
}

START_TEST(ambiguous_framing_and_escapes_are_refused)
{
	http_server_up();
	const char *p = http_project();
	char rt[128];
	token_for(haddr, p, COFFER__V1__ROLE__ROLE_RUNTIME, NULL, 0, rt, NULL);
	char path[512], raw[4096], first[64];
	secrets_path(path, sizeof(path), p, "main", "live", "/A");
	bool closed;
	/* Control: two requests sent at once get two answers. */
	snprintf(raw, sizeof(raw),
	         "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
	         "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: "
	         "close\r\n\r\n",
	         path, rt, path, rt);
	ck_assert_int_eq(answers_to(raw, first, &closed), 2);
	/* A body that one reader sees and another does not: a second request hides in it. Each is
	 * refused with one answer, and the connection closes, so the hidden one never runs. */
	char hidden[1024];
	snprintf(hidden, sizeof(hidden),
	         "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", path, rt);
	size_t n = strlen(hidden);
	char heads[3][128];
	snprintf(heads[0], sizeof(heads[0]), "Content-Length : %zu\r\n", n);
	snprintf(heads[1], sizeof(heads[1]), "Content-Length: %zu\r\nContent-Length: %zu\r\n", n,
	         n);
	snprintf(heads[2], sizeof(heads[2]), "Content-Length\t: %zu\r\n", n);
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		const char *cl = heads[i];
		snprintf(raw, sizeof(raw),
		         "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s\r\n%s", path,
		         rt, cl, hidden);
		ck_assert_msg(answers_to(raw, first, &closed) == 1,
		              "case %zu: more than one answer", i);
		ck_assert_msg(strncmp(first, "HTTP/1.1 400 ", 13) == 0, "case %zu: %s", i, first);
		ck_assert_msg(closed, "case %zu: the connection stayed open", i);
	}
	/* A path that a NUL would shorten, or an encoded "/" would split. */
	const char *tails[] = {"/A%00.json", "/A%2F..%2FB", "/A%2f"};
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		char bad[600];
		secrets_path(bad, sizeof(bad), p, "main", "live", tails[i]);
		snprintf(raw, sizeof(raw),
		         "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", bad, rt);
		ck_assert_int_eq(answers_to(raw, first, &closed), 1);
		ck_assert_msg(strncmp(first, "HTTP/1.1 400 ", 13) == 0, "%s: %s", tails[i], first);
	}
}
END_TEST

START_TEST(connect_bodies_are_bounded)
{
	http_server_up();
	/* A body over --max-message-bytes is refused from its head (Connect's error), and the
	 * connection closes: nothing of it is read. */
	char head[1024];
	snprintf(head, sizeof(head),
	         "POST /coffer.v1.Projects/ListProjects HTTP/1.1\r\nHost: x\r\nContent-Type: "
	         "application/json\r\nContent-Length: 999999999\r\n\r\n");
	ck_assert(answered_without_the_body(head, "HTTP/1.1 413 "));
	/* A POST to a REST path is refused from its head too. */
	char path_a[512];
	secrets_path(path_a, sizeof(path_a), http_project(), "main", "live", "/A");
	snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
	         path_a);
	ck_assert(answered_without_the_body(head, "HTTP/1.1 405 "));
	/* A body sent a byte at a time is cut off after the body's time (10 s from the head),
	 * however busy it looks. */
	snprintf(head, sizeof(head),
	         "POST /coffer.v1.Projects/ListProjects HTTP/1.1\r\nHost: x\r\nContent-Type: "
	         "application/json\r\nContent-Length: 100000\r\n\r\n");
	int fd = connect_to(hport);
	ck_assert_int_eq(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
	time_t t0 = time(NULL);
	bool cut = false;
	for (int i = 0; i < 100 && !cut; i++)
		cut = send(fd, " ", 1, MSG_NOSIGNAL) != 1 || closed_within(fd, 200);
	ck_assert_msg(cut, "a dribbling body held its connection for %d s", (int)(time(NULL) - t0));
	ck_assert_int_ge(time(NULL) - t0, 8);
	ck_assert_int_le(time(NULL) - t0, 14);
	close(fd);
}
END_TEST

START_TEST(connect_unavailable_says_retryable)
{
	http_server_up();
	/* A write over Connect that the audit log refuses wrote nothing: 503, unavailable, and the
	 * header that lets a client send it again (gRPC's trailing metadata). */
	const char *tok = access_admin_token();
	char json[256];
	snprintf(json, sizeof(json), "{\"name\":\"%s-retry\"}", http_project());
	audit_log_break();
	struct got g = connect_post("/coffer.v1.Projects/CreateProject", tok, json);
	audit_log_mend();
	ck_assert_int_eq(g.status, 503);
	ck_assert_msg(strstr(g.body, "\"code\":\"unavailable\"") != NULL, "%s", g.body);
	ck_assert(g.retryable);
	got_free(&g);
	/* sent again, it is written once */
	g = connect_post("/coffer.v1.Projects/CreateProject", tok, json);
	ck_assert_int_eq(g.status, 200);
	ck_assert(!g.retryable);
	got_free(&g);
}
END_TEST

START_TEST(console_files_are_served_with_their_policy)
{
	/* Off by default: no page at /. */
	http_server_up();
	expect_error(get("/", NULL), 404, "NOT_FOUND");
	/* With --console: every page's URL is the one page, its files and the component are
	 * served, each with a policy that allows nothing from another origin. */
	struct settings c2 = cfg;
	c2.http_listen = "127.0.0.1:0";
	c2.console = true;
	char addr[64], url[256];
	struct server *con = start_replica(&c2, addr, sizeof(addr));
	int port = server_http_port(con);
	static const struct {
		const char *path, *type;
	} files[] = {
	        {"/", "text/html; charset=utf-8"},
	        {"/projects/demo/secrets", "text/html; charset=utf-8"},
	        {"/projects/demo/environments/staging/overrides/live", "text/html; charset=utf-8"},
	        {"/console/app.js", "text/javascript; charset=utf-8"},
	        {"/console/style.css", "text/css; charset=utf-8"},
	        {"/console/icon.svg", "image/svg+xml"},
	        {"/components/secret-input.js", "text/javascript; charset=utf-8"},
	};
	char *page = NULL;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, files[i].path);
		struct got g = request(NULL, url, NULL, NULL, NULL, NULL, NULL);
		ck_assert_msg(g.status == 200, "%s: %ld", files[i].path, g.status);
		ck_assert_str_eq(g.type, files[i].type);
		ck_assert_str_eq(g.csp,
		                 "default-src 'self'; script-src 'self'; style-src 'self'; "
		                 "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
		                 "form-action 'self'");
		ck_assert_str_eq(g.referrer, "no-referrer");
		if (i == 0)
			page = strdup(g.body);
		else if (strncmp(files[i].type, "text/html", 9) == 0)
			ck_assert_str_eq(g.body, page); /* every page's URL is the one page */
		got_free(&g);
	}
	ck_assert_ptr_nonnull(strstr(page, "<script type=\"module\" src=\"/console/app.js\">"));
	free(page);
	/* nothing else: an unknown file, a way out of the folder, a POST */
	static const char *none[] = {"/console/nope.js", "/console/%2e%2e/index.html",
	                             "/index.html", "/components/%2e%2e/console/app.js"};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, none[i]);
		struct got g = request(NULL, url, NULL, NULL, NULL, NULL, NULL);
		ck_assert_msg(g.status == 404, "%s: %ld", none[i], g.status);
		got_free(&g);
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	struct got g = request("POST", url, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(g.status, 405);
	got_free(&g);
	server_stop(con, 1);
}
END_TEST

START_TEST(oversized_slow_and_greedy_clients_are_refused)
{
	http_server_up();
	const char *p = http_project();
	char rt[128];
	token_for(haddr, p, COFFER__V1__ROLE__ROLE_RUNTIME, NULL, 0, rt, NULL);
	/* A header or a URL past the bound. */
	char *big = malloc(20001);
	memset(big, 'a', 20000);
	big[20000] = '\0';
	char *hdr = malloc(20020);
	snprintf(hdr, 20020, "X-Big: %s", big);
	char url[21000];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/", hport);
	struct got g = request(NULL, url, rt, hdr, NULL, NULL, NULL);
	ck_assert_int_eq(g.status, 431);
	got_free(&g);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/%s", hport, big);
	g = request(NULL, url, rt, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(g.status, 414);
	got_free(&g);
	free(hdr);
	free(big);
	char path_a[512];
	secrets_path(path_a, sizeof(path_a), p, "main", "live", "/A");
	/* A request that announces a body is answered from its head (nothing here takes a body),
	 * so a body sent slowly holds nothing. */
	char head[1024];
	snprintf(head, sizeof(head),
	         "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n", path_a);
	ck_assert(answered_without_the_body(head, "HTTP/1.1 405 "));
	snprintf(head, sizeof(head),
	         "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: "
	         "10\r\n\r\n",
	         path_a, rt);
	ck_assert(answered_without_the_body(head, "HTTP/1.1 400 "));
	snprintf(head, sizeof(head),
	         "GET %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", path_a);
	ck_assert(answered_without_the_body(head, "HTTP/1.1 400 "));
	/* A client that sends its request a byte at a time is cut off after the head timeout
	 * (5 s), however busy it looks. */
	int fd = connect_to(hport);
	time_t t0 = time(NULL);
	bool cut = false;
	for (int i = 0; i < 100 && !cut; i++) {
		cut = send(fd, "G", 1, MSG_NOSIGNAL) != 1 || closed_within(fd, 200);
	}
	ck_assert_msg(cut, "a dribbling client held its connection for %d s",
	              (int)(time(NULL) - t0));
	ck_assert_int_le(time(NULL) - t0, 8);
	close(fd);
	/* Connections from one address are bounded (4 here): the next is closed at once, and a
	 * request gets through again when they go. */
	int held[4];
	hold_connections(held, 4);
	int extra = connect_to(hport);
	ck_assert(closed_within(extra, 2000));
	ck_assert_int_eq(metric_value(server_metrics_port(hsrv), "coffer_http_connections "), 4);
	/* The four held connections were the ones counted: each still serves a request. */
	for (int i = 0; i < 4; i++)
		ck_assert_msg(serves_a_request(held[i], path_a), "held connection %d", i);
	close(extra);
	for (int i = 0; i < 4; i++)
		close(held[i]);
	/* The server lets go of them as it notices they closed (well under a second). */
	long status = 0;
	for (int i = 0; i < 50 && status != 200; i++) {
		usleep(100 * 1000);
		g = get(path_a, rt);
		status = g.status;
		got_free(&g);
	}
	ck_assert_int_eq(status, 200);
}
END_TEST

/* A request whose call cannot finish (the database is held) gets 504 at its deadline (10 s): the
 * connection is answered, not left hanging. */
START_TEST(a_request_past_its_deadline_is_504)
{
	char rt[128], path[512];
	project_for_http("httpslow", rt, path);
	PQclear(sql("BEGIN", 0, NULL));
	PQclear(sql("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE", 0, NULL));
	time_t t0 = time(NULL);
	struct got g = get(path, rt);
	time_t waited = time(NULL) - t0;
	PQclear(sql("ROLLBACK", 0, NULL));
	ck_assert_int_ge(waited, 9);
	expect_error(g, 504, "DEADLINE_EXCEEDED");
	/* and the endpoint serves again at once */
	g = get(path, rt);
	ck_assert_int_eq(g.status, 200);
	got_free(&g);
}
END_TEST

struct held_get {
	const char *url, *token;
	struct got g;
};

static void *held_get_run(void *arg)
{
	struct held_get *h = arg;
	h->g = request(NULL, h->url, h->token, NULL, NULL, NULL, NULL);
	return NULL;
}

static void *stop_run(void *arg)
{
	server_stop(arg, 5);
	return NULL;
}

/* A replica told to stop while an HTTP request is in its call: no new connection is taken, and
 * the request in flight still gets its whole answer before the listener closes. */
START_TEST(a_request_in_flight_at_shutdown_gets_its_answer)
{
	struct settings c2 = cfg;
	c2.http_listen = "127.0.0.1:0";
	char addr[64];
	struct server *s = start_replica(&c2, addr, sizeof(addr));
	int port = server_http_port(s);
	const char *p = uniq("httpstop");
	project_with(addr, p, "v1");
	/* An answer of 4 MB, which takes the listener a while to send. */
	coffer_channel *a = to(addr, access_admin_token(), 20000);
	large_secrets(a, p, 64);
	coffer_channel_free(a);
	char rt[128], path[512], url[1024];
	token_for(addr, p, COFFER__V1__ROLE__ROLE_RUNTIME, NULL, 0, rt, NULL);
	secrets_path(path, sizeof(path), p, "main", "live", "");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	PQclear(sql("BEGIN", 0, NULL));
	PQclear(sql("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE", 0, NULL));
	struct held_get h = {.url = url, .token = rt};
	pthread_t get, stop;
	pthread_create(&get, NULL, held_get_run, &h);
	usleep(500 * 1000); /* the request waits on the lock */
	pthread_create(&stop, NULL, stop_run, s);
	usleep(500 * 1000);
	char other[128];
	snprintf(other, sizeof(other), "http://127.0.0.1:%d/v1/", port);
	struct got refused = request(NULL, other, rt, NULL, NULL, NULL, NULL);
	PQclear(sql("ROLLBACK", 0, NULL));
	pthread_join(get, NULL);
	pthread_join(stop, NULL);
	ck_assert_msg(refused.status < 0, "a new connection during the stop got %ld",
	              refused.status);
	got_free(&refused);
	ck_assert_int_eq(h.g.status, 200);
	ck_assert_uint_gt(h.g.len, 64 * 60000);
	ck_assert_ptr_nonnull(strstr(h.g.body, "\"S\":\"v1\""));
	got_free(&h.g);
}
END_TEST

static struct server *https_server(bool mtls, int *port)
{
	struct settings c2 = cfg;
	with_tls(&c2, mtls);
	c2.http_listen = "127.0.0.1:0";
	char addr[64];
	struct server *s = start_replica(&c2, addr, sizeof(addr));
	*port = server_http_port(s);
	return s;
}

static long https_status(int port, const char *path, const char *token, const char *ca,
                         const char *cert, const char *key)
{
	char url[512], cap[128], cp[128], kp[128];
	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, path);
	snprintf(cap, sizeof(cap), "%s/%s", test_certs(), ca ? ca : "");
	snprintf(cp, sizeof(cp), "%s/%s", test_certs(), cert ? cert : "");
	snprintf(kp, sizeof(kp), "%s/%s", test_certs(), key ? key : "");
	struct got g =
	        request(NULL, url, token, NULL, ca ? cap : NULL, cert ? cp : NULL, key ? kp : NULL);
	long s = g.status;
	got_free(&g);
	return s;
}

/* Signs in to the console over HTTPS (the test CA) with token: the answer's status, its cookie into
 * cookie (cap bytes). */
static long https_sign_in(int port, const char *token, char *cookie, size_t cap)
{
	struct got g = {0};
	CURL *c = curl_easy_init();
	ck_assert_ptr_nonnull(c);
	char url[256], auth[256], ca[256];
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/coffer.console.v1.Sessions/SignIn", port);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	snprintf(ca, sizeof(ca), "%s/ca.crt", test_certs());
	struct curl_slist *h = curl_slist_append(NULL, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &g);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &g);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &g.status);
	snprintf(cookie, cap, "%s", g.cookie);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	long status = g.status;
	got_free(&g);
	return status;
}

START_TEST(tls_and_mtls_as_grpc)
{
	http_server_up();
	const char *p = http_project();
	char rt[128];
	token_for(haddr, p, COFFER__V1__ROLE__ROLE_RUNTIME, NULL, 0, rt, NULL);
	char path[512];
	secrets_path(path, sizeof(path), p, "main", "live", "/A");
	int port, mport;
	struct server *tls = https_server(false, &port);
	struct server *mtls = https_server(true, &mport);
	ck_assert_int_eq(https_status(port, path, rt, "ca.crt", NULL, NULL), 200);
	ck_assert_int_lt(https_status(port, path, rt, "other-ca.crt", NULL, NULL), 0);
	ck_assert_int_eq(https_status(mport, path, rt, "ca.crt", "client.crt", "client.key"), 200);
	ck_assert_int_eq(https_status(mport, path, rt, "ca.crt", NULL, NULL), 401);
	long stranger = https_status(mport, path, rt, "ca.crt", "stranger.crt", "stranger.key");
	ck_assert_msg(stranger == 401 || stranger < 0, "a stranger's certificate: %ld", stranger);
	/* A certificate of the right CA that is not for client authentication, refused as gRPC
	 * refuses it. */
	long server_only =
	        https_status(mport, path, rt, "ca.crt", "notclient.crt", "notclient.key");
	ck_assert_msg(server_only == 401 || server_only < 0,
	              "a server certificate as a client's: %ld", server_only);
	/* Under TLS the console's session cookie is Secure as well. */
	char editor[128], cookie[256];
	token_for(haddr, p, COFFER__V1__ROLE__ROLE_EDITOR, NULL, 0, editor, NULL);
	ck_assert_int_eq(https_sign_in(port, editor, cookie, sizeof(cookie)), 200);
	ck_assert_msg(strstr(cookie, "; HttpOnly; SameSite=Strict; Secure") != NULL, "%s", cookie);
	/* Plaintext to a TLS listener gets no answer. */
	char url[1024];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	struct got g = request(NULL, url, rt, NULL, NULL, NULL, NULL);
	ck_assert_int_ne(g.status, 200);
	got_free(&g);
	server_stop(tls, 1);
	server_stop(mtls, 1);
}
END_TEST

START_TEST(plaintext_http_off_loopback_is_refused)
{
	struct settings c2 = cfg;
	c2.listen = "127.0.0.1:0";
	c2.http_listen = "0.0.0.0:0";
	struct server *s = NULL;
	struct cof_err e = {0};
	ck_assert_int_ne(server_start(&c2, 5, &s, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "plaintext HTTP"));
}
END_TEST

TCase *tcase_http(void)
{
	TCase *tc = tcase_create("http");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, NULL, http_server_down);
	test_add(tc, values_equal_resolve_secrets);
	test_add(tc, conditional_get_with_the_revision_as_etag);
	test_add(tc, every_status_the_endpoint_reaches);
	test_add(tc, restricted_values_go_to_runtime_tokens_only_and_each_request_is_audited);
	test_add(tc, ambiguous_framing_and_escapes_are_refused);
	test_add(tc, oversized_slow_and_greedy_clients_are_refused);
	test_add(tc, connect_bodies_are_bounded);
	test_add(tc, connect_unavailable_says_retryable);
	test_add(tc, console_files_are_served_with_their_policy);
	test_add(tc, a_request_past_its_deadline_is_504);
	test_add(tc, a_request_in_flight_at_shutdown_gets_its_answer);
	test_add(tc, tls_and_mtls_as_grpc);
	test_add(tc, plaintext_http_off_loopback_is_refused);
	return tc;
}
