/*
 * http_json.c - the HTTP listener's requests: Connect's (connect.c) by their path, and the
 * read-only REST paths here. A GET of an environment's secrets becomes a
 * ResolveSecrets call run by the rpc runtime exactly as a gRPC one (the same policy, scopes,
 * cache, audit row, limits, log line and metrics), and its answer becomes JSON.
 *
 *   GET /v1/projects/{p}/environments/{e}/versions/{draft|live}/secrets[?names=A,B]
 *       -> {"revision": N, "secrets": {"NAME": "value", ...}}
 *   GET /v1/projects/{p}/environments/{e}/versions/{draft|live}/secrets/{name}
 *       -> {"name": "NAME", "value": "...", "revision": N, "source": "default"|"override"}
 *   errors -> {"code": "NOT_FOUND", "message": "..."} with the HTTP status of the code.
 * Answers carry ETag "N" (the revision); If-None-Match "N" is ResolveSecrets' known_revision: the
 * set has not moved since N, 304 and no body.
 *
 * Response bodies may hold values: they are built in buffers that are wiped whenever they grow
 * and handed to the listener, which wipes them after sending.
 */
#include "http_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/v1/secrets.pb-c.h"
#include "coffer_limits.h"
#include "coffer_shared.h"
#include "connect.h"
#include "console.h"
#include "http.h"
#include "rpc.h"

#define RESOLVE_PATH "/coffer.v1.Secrets/ResolveSecrets"
/* Names a ?names= list may hold. */
/* An HTTP request without a deadline of its own gets this long. */

struct http_json {
	struct rpc_server *rpc;
	bool console; /* serve the console's pages and files */
};

/* One request on its way through ResolveSecrets. */
struct pending {
	struct http_request *req;
	bool single; /* .../secrets/{name} */
};

int http_json_new(struct rpc_server *rpc, bool console, struct http_json **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -1;
	(*out)->rpc = rpc;
	(*out)->console = console;
	return 0;
}

void http_json_free(struct http_json *h)
{
	free(h);
}

/* ---- answers ---- */

static void answer_json(struct http_request *req, int status, struct coffer_wbuf *b)
{
	if (b->failed) {
		coffer_wbuf_free(b);
		http_answer_error(req, coffer_status_http(RPC_RESOURCE_EXHAUSTED),
		                  rpc_code_name(RPC_RESOURCE_EXHAUSTED), "out of memory");
		return;
	}
	http_answer(req, status, "application/json", b->p, b->len);
	/* the listener owns the buffer now */
}

static void answer_error(struct http_request *req, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void answer_error(struct http_request *req, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_answer_error(req, coffer_status_http(code), rpc_code_name(code), msg);
}

static void on_resolved(void *arg, int code, const char *message, const ProtobufCMessage *resp,
                        bool retryable)
{
	(void)retryable; /* a read: always safe to repeat */
	struct pending *p = arg;
	struct http_request *req = p->req;
	const Coffer__V1__ResolveSecretsResponse *r =
	        (const Coffer__V1__ResolveSecretsResponse *)resp;
	struct coffer_wbuf b = {0};
	if (code == RPC_OK && r != NULL) {
		char etag[32];
		snprintf(etag, sizeof(etag), "\"%lld\"", (long long)r->revision);
		http_set_header(req, "ETag", etag);
	}
	if (code != RPC_OK || r == NULL) {
		answer_error(req, code == RPC_OK ? RPC_INTERNAL : code, "%s", message);
	} else if (r->not_modified) {
		http_answer(req, 304, "application/json", NULL, 0);
	} else if (p->single && r->n_secrets == 0) {
		answer_error(req, RPC_NOT_FOUND, "secret %s is not in this environment and version",
		             r->n_missing ? r->missing[0] : "");
	} else if (p->single) {
		const Coffer__V1__ResolvedSecret *s = r->secrets[0];
		coffer_wbuf_str(&b, "{\"name\":");
		coffer_wbuf_json(&b, s->name);
		coffer_wbuf_str(&b, ",\"value\":");
		coffer_wbuf_json(&b, s->value);
		coffer_wbuf_fmt(&b, ",\"revision\":%lld,\"source\":", (long long)r->revision);
		coffer_wbuf_json(&b, s->source == COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_OVERRIDE
		                             ? "override"
		                             : "default");
		coffer_wbuf_str(&b, "}");
		answer_json(req, 200, &b);
	} else {
		coffer_wbuf_fmt(&b, "{\"revision\":%lld,\"secrets\":{", (long long)r->revision);
		for (size_t i = 0; i < r->n_secrets; i++) {
			if (i)
				coffer_wbuf_str(&b, ",");
			coffer_wbuf_json(&b, r->secrets[i]->name);
			coffer_wbuf_str(&b, ":");
			coffer_wbuf_json(&b, r->secrets[i]->value);
		}
		coffer_wbuf_str(&b, "}}");
		answer_json(req, 200, &b);
	}
	free(p);
}

/* Splits path into at most max segments (in place); how many, or -1 past max. */
static int split(char *path, char **seg, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (n == max)
			return -1;
		seg[n++] = s;
	}
	return n;
}

/* If-None-Match: "N" (or W/"N"), or a list of them: answer 304 while the set is still at
 * revision N. Revisions only grow, so of a list only the newest can still match. */
static int64_t known_revision(const char *inm)
{
	long long known = 0;
	for (const char *s = inm; s && *s;) {
		s += strspn(s, " \t,");
		if (strncmp(s, "W/", 2) == 0)
			s += 2;
		long long n = 0;
		int used = 0;
		if (sscanf(s, "\"%lld\"%n", &n, &used) == 1 && used > 0 && n > known)
			known = n;
		s = strchr(s, ',');
	}
	return known;
}

/* The request's path as a resolve's project, environment and version into r, pointing into path
 * (cap bytes), and one secret's name into *single (NULL: the whole set); false, answered, when it
 * is no path of ours. */
static bool read_path(struct http_request *req, char *path, size_t cap,
                      Coffer__V1__ResolveSecretsRequest *r, char **single)
{
	if (strlen(http_path(req)) >= cap) {
		answer_error(req, RPC_INVALID_ARGUMENT, "the path is longer than %zu bytes",
		             cap - 1);
		return false;
	}
	snprintf(path, cap, "%s", http_path(req));
	char *seg[10];
	int n = split(path, seg, 10);
	if ((n != 8 && n != 9) || strcmp(seg[0], "v1") != 0 || strcmp(seg[1], "projects") != 0 ||
	    strcmp(seg[3], "environments") != 0 || strcmp(seg[5], "versions") != 0 ||
	    strcmp(seg[7], "secrets") != 0) {
		answer_error(req, RPC_NOT_FOUND,
		             "no such resource: GET /v1/projects/{project}/environments/"
		             "{environment}/versions/{draft|live}/secrets[/{name}]");
		return false;
	}
	r->project = seg[2];
	r->environment = seg[4];
	if (strcmp(seg[6], "draft") == 0) {
		r->version = COFFER__V1__VERSION__VERSION_DRAFT;
	} else if (strcmp(seg[6], "live") == 0) {
		r->version = COFFER__V1__VERSION__VERSION_LIVE;
	} else {
		answer_error(req, RPC_INVALID_ARGUMENT, "the version is draft or live");
		return false;
	}
	*single = n == 9 ? seg[8] : NULL;
	return true;
}

/* The names asked for into names (LIMIT_HTTP_NAMES of room, pointing into list, cap bytes): the
 * one secret of the path, or ?names=; false, answered, when they are refused. */
static bool read_names(struct http_request *req, char *single, char **names, char *list, size_t cap,
                       Coffer__V1__ResolveSecretsRequest *r)
{
	const char *q = http_query(req, "names");
	r->names = names;
	if (single != NULL && q != NULL) {
		answer_error(req, RPC_INVALID_ARGUMENT,
		             "?names= goes with .../secrets, not with one secret's path");
		return false;
	}
	if (single != NULL) {
		names[r->n_names++] = single;
		return true;
	}
	if (q == NULL)
		return true;
	if (strlen(q) >= cap) {
		answer_error(req, RPC_INVALID_ARGUMENT, "?names= is longer than %zu bytes",
		             cap - 1);
		return false;
	}
	snprintf(list, cap, "%s", q);
	char *save = NULL;
	for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		if (r->n_names == LIMIT_HTTP_NAMES) {
			answer_error(req, RPC_INVALID_ARGUMENT, "?names= lists more than %d names",
			             LIMIT_HTTP_NAMES);
			return false;
		}
		names[r->n_names++] = s;
	}
	return true;
}

/* The REST read paths. */
static void handle_rest(struct http_json *h, struct http_request *req)
{
	char path[1024], list[4096], *single = NULL, *names[LIMIT_HTTP_NAMES];
	if (strcmp(http_method(req), "GET") != 0 && strcmp(http_method(req), "HEAD") != 0) {
		http_set_header(req, "Allow", "GET, HEAD");
		http_answer_error(req, 405, rpc_code_name(RPC_UNIMPLEMENTED),
		                  "the /v1/ paths are read with GET");
		return;
	}
	Coffer__V1__ResolveSecretsRequest r = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	if (!read_path(req, path, sizeof(path), &r, &single) ||
	    !read_names(req, single, names, list, sizeof(list), &r))
		return;
	r.known_revision = known_revision(http_header(req, "If-None-Match"));
	/* The resolve runs as a gRPC call of it would; its answer comes through on_resolved. */
	struct pending *p = calloc(1, sizeof(*p));
	size_t len = protobuf_c_message_get_packed_size(&r.base);
	uint8_t *packed = malloc(len ? len : 1);
	if (p == NULL || packed == NULL) {
		free(p);
		free(packed);
		answer_error(req, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	protobuf_c_message_pack(&r.base, packed);
	p->req = req;
	p->single = single != NULL;
	const char *auth = http_header(req, "Authorization");
	const char *md[2] = {"authorization", auth ? auth : ""};
	struct rpc_local_req lr = {.path = RESOLVE_PATH,
	                           .packed = packed,
	                           .len = len,
	                           .md = md,
	                           .n_md = auth ? 1 : 0,
	                           .peer = http_peer(req),
	                           .transport = "http",
	                           .timeout_ms = LIMIT_HTTP_CALL_MS};
	int code = rpc_local_call(h->rpc, &lr, on_resolved, p);
	free(packed);
	if (code != 0) {
		free(p);
		answer_error(req, code, "%s",
		             code == RPC_UNAVAILABLE ? "the server is shutting down"
		                                     : "cannot run the call");
	}
}

void http_json_handle(void *app, struct http_request *req)
{
	struct http_json *h = app;
	const struct console_file *f = h->console ? console_file_of(http_path(req)) : NULL;
	if (connect_path(http_path(req)))
		connect_handle(h->rpc, req);
	else if (f != NULL && strcmp(http_method(req), "POST") != 0)
		console_answer(req, f);
	else
		handle_rest(h, req);
}

bool http_json_takes_body(void *app, const char *path)
{
	(void)app;
	return connect_path(path);
}

size_t http_json_error(void *app, const char *path, int code, const char *message, char **body,
                       const char **type)
{
	(void)app;
	*type = "application/json";
	if (connect_path(path))
		return connect_error_body(code, message, body);
	return http_error_body(rpc_code_name(code), message, body);
}
