/*
 * connect.c - the Connect protocol over the rpc runtime (see connect.h).
 *
 * A unary request: POST with Content-Type application/json or application/proto (or GET with
 * ?encoding=json|proto&message=...[&base64=1] for a method marked NO_SIDE_EFFECTS), its body
 * decoded into the method's request message (pbjson: JSON -> the binary form), run by
 * rpc_local_call; its answer is 200 and the response in the request's encoding, or Connect's
 * error JSON with the HTTP status of its code (proto/coffer_status.def). A server stream: POST
 * with application/connect+json or +proto and one enveloped message; the answer is 200 and a
 * stream of enveloped messages, then the end-of-stream message (flag 2) with the error, if any.
 *
 * Request and response bodies may hold values: the listener wipes request bodies, JSON is built
 * in coffer_wbuf buffers that wipe, jansson's memory is wiped (pbjson_init), and answers are
 * handed to the listener, which wipes them after sending.
 */
#include "connect.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "call.h"
#include "coffer_limits.h"
#include "coffer_shared.h"
#include "http.h"
#include "pbjson.h"
#include "rpc.h"

/* What the transport is called in the audit row and the log line. */
#define TRANSPORT CALL_CONNECT_TRANSPORT
/* The console's session cookie, and the methods that set and clear it. */
#define COOKIE   "coffer_session"
#define SIGN_IN  "/coffer.console.v1.Sessions/SignIn"
#define SIGN_OUT "/coffer.console.v1.Sessions/SignOut"
/* Envelope flags. */
#define FLAG_COMPRESSED 0x01
#define FLAG_END_STREAM 0x02
/* Messages a slow client may leave queued on a stream (the runtime's bound). */

bool connect_path(const char *path)
{
	/* "/" then a dotted service name, "/", a method name, nothing more */
	const char *slash = path[0] == '/' ? strchr(path + 1, '/') : NULL;
	return slash != NULL && slash > path + 1 &&
	       memchr(path + 1, '.', (size_t)(slash - path - 1)) && slash[1] != '\0' &&
	       strchr(slash + 1, '/') == NULL;
}

size_t connect_error_body(int code, const char *message, char **body)
{
	return http_error_body(coffer_status_connect(code), message, body);
}

/* Answers req with Connect's error for code, with the HTTP status of the code (or status, when it
 * is not 0: an unknown method is 404, a GET of a method with side effects 405). */
static void answer_error(struct http_request *req, int status, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void answer_error(struct http_request *req, int status, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char *body = NULL;
	size_t len = connect_error_body(code, msg, &body);
	http_answer(req, status ? status : coffer_status_http(code), "application/json", body, len);
}

/* ---- the request ---- */

/* How a request's messages are encoded. */
enum encoding { ENC_JSON, ENC_PROTO };

/* One Connect request on its way through the runtime. */
struct request {
	char session[80];            /* the session cookie's secret ("" none) */
	struct http_request *req;    /* the HTTP request (until it is answered) */
	const coffer_method_desc *m; /* the method */
	enum encoding enc;           /* of the request and the answer */
	struct coffer_wbuf wire;     /* the request message, binary (wiped) */
	int64_t timeout_ms;          /* Connect-Timeout-Ms, or the default */
};

/* The media type of a Content-Type without its parameters ("application/json; charset=utf-8"),
 * compared case-insensitively. */
static bool media_is(const char *type, const char *want)
{
	size_t n = strlen(want);
	return type != NULL && strncasecmp(type, want, n) == 0 &&
	       (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

/* The headers every Connect request may carry: the protocol version, the timeout, the
 * encodings. False, answered, when one is refused. */
static bool read_headers(struct http_request *req, struct request *r, bool stream)
{
	const char *version = http_header(req, "Connect-Protocol-Version");
	if (version != NULL && strcmp(version, "1") != 0) {
		answer_error(req, 0, RPC_INVALID_ARGUMENT,
		             "Connect-Protocol-Version must be 1, the version served here");
		return false;
	}
	const char *timeout = http_header(req, "Connect-Timeout-Ms");
	r->timeout_ms = stream ? 0 : LIMIT_HTTP_CALL_MS;
	if (timeout != NULL) {
		size_t n = strlen(timeout);
		if (n == 0 || n > 10 || strspn(timeout, "0123456789") != n) {
			answer_error(
			        req, 0, RPC_INVALID_ARGUMENT,
			        "Connect-Timeout-Ms is a positive integer of at most 10 digits");
			return false;
		}
		r->timeout_ms = strtoll(timeout, NULL, 10);
		if (r->timeout_ms == 0)
			r->timeout_ms = 1; /* already over: the call ends DEADLINE_EXCEEDED */
	}
	const char *enc =
	        http_header(req, stream ? "Connect-Content-Encoding" : "Content-Encoding");
	if (enc != NULL && strcasecmp(enc, "identity") != 0) {
		http_set_header(req, stream ? "Connect-Accept-Encoding" : "Accept-Encoding",
		                "identity");
		answer_error(req, 0, RPC_UNIMPLEMENTED,
		             "compressed requests are not served here; send identity");
		return false;
	}
	return true;
}

/* The request message's bytes (body, len) in encoding enc, into r->wire as binary. False,
 * answered, when they do not decode. */
static bool decode(struct http_request *req, struct request *r, const char *body, size_t len)
{
	if (r->enc == ENC_PROTO) {
		if (len && coffer_wbuf_put(&r->wire, body, len) != 0) {
			answer_error(req, 0, RPC_RESOURCE_EXHAUSTED, "out of memory");
			return false;
		}
		return true;
	}
	if (len == 0) /* an empty body is the empty message */
		return true;
	char err[320];
	int rc = pbjson_decode(r->m->input, body, len, &r->wire, err, sizeof(err));
	if (rc == -2)
		answer_error(req, 0, RPC_RESOURCE_EXHAUSTED, "out of memory");
	else if (rc != 0)
		answer_error(req, 0, RPC_INVALID_ARGUMENT, "%s", err);
	return rc == 0;
}

/* A GET's request (?connect=v1&encoding=json&message=...[&base64=1]). False, answered, when it is
 * refused. */
static bool read_get(struct http_request *req, struct request *r)
{
	const char *connect = http_query(req, "connect");
	const char *encoding = http_query(req, "encoding");
	const char *message = http_query(req, "message");
	const char *b64 = http_query(req, "base64");
	const char *compression = http_query(req, "compression");
	if (connect != NULL && strcmp(connect, "v1") != 0) {
		answer_error(req, 0, RPC_INVALID_ARGUMENT, "connect must be v1");
		return false;
	}
	if (compression != NULL && strcmp(compression, "identity") != 0) {
		answer_error(req, 0, RPC_UNIMPLEMENTED,
		             "compressed requests are not served here; send identity");
		return false;
	}
	if (encoding == NULL || (strcmp(encoding, "json") != 0 && strcmp(encoding, "proto") != 0)) {
		answer_error(req, 415, RPC_INVALID_ARGUMENT, "encoding is json or proto");
		return false;
	}
	r->enc = strcmp(encoding, "json") == 0 ? ENC_JSON : ENC_PROTO;
	if (message == NULL)
		message = "";
	size_t len = strlen(message);
	if (b64 == NULL || strcmp(b64, "1") != 0) {
		if (r->enc == ENC_PROTO && len) {
			answer_error(req, 0, RPC_INVALID_ARGUMENT,
			             "a binary message in a URL is base64 (base64=1)");
			return false;
		}
		return decode(req, r, message, len);
	}
	uint8_t *raw = malloc(len ? len : 1);
	size_t n = 0;
	bool ok = raw != NULL && pbjson_base64_decode(message, len, raw, &n);
	if (!ok)
		answer_error(req, 0, raw ? RPC_INVALID_ARGUMENT : RPC_RESOURCE_EXHAUSTED,
		             raw ? "message is not base64" : "out of memory");
	else
		ok = decode(req, r, (const char *)raw, n);
	if (raw) {
		explicit_bzero(raw, len ? len : 1);
		free(raw);
	}
	return ok;
}

/* The call of r as the runtime takes it: its message, the bearer token as a gRPC client sends it,
 * or else the console session (md: room for one pair), the peer, the deadline. */
static struct rpc_local_req local_req(struct http_request *req, const struct request *r,
                                      const char *md[2])
{
	const char *auth = http_header(req, "Authorization");
	md[0] = auth ? "authorization" : CALL_SESSION_KEY;
	md[1] = auth ? auth : r->session;
	return (struct rpc_local_req){
	        .path = r->m->path,
	        .packed = (const uint8_t *)(r->wire.p ? r->wire.p : ""),
	        .len = r->wire.len,
	        .md = md,
	        .n_md = auth || r->session[0] ? 1 : 0,
	        .peer = http_peer(req),
	        .transport = TRANSPORT,
	        .timeout_ms = r->timeout_ms,
	};
}

static void request_free(struct request *r)
{
	coffer_wbuf_free(&r->wire);
	explicit_bzero(r->session, sizeof(r->session));
	free(r);
}

/* The session cookie's value (Cookie: a=b; coffer_session=...) into out, or "". */
static void cookie_of(struct http_request *req, char *out, size_t cap)
{
	out[0] = '\0';
	const char *h = http_header(req, "Cookie");
	for (const char *p = h; p && *p;) {
		p += strspn(p, " ;");
		size_t n = strcspn(p, ";");
		if (n > sizeof(COOKIE) && strncmp(p, COOKIE "=", sizeof(COOKIE)) == 0 &&
		    n - sizeof(COOKIE) < cap)
			snprintf(out, cap, "%.*s", (int)(n - sizeof(COOKIE)), p + sizeof(COOKIE));
		p += n;
	}
}

/* A call that would ride on the console's cookie must come from the console's own origin: a
 * browser says where a request comes from (Origin, Sec-Fetch-Site), and a page of another site
 * cannot send its request with the cookie and be taken for the console. A call with a bearer
 * token carries no cookie's authority and is not checked. False, answered, when refused. */
static bool same_origin(struct http_request *req, struct request *r)
{
	cookie_of(req, r->session, sizeof(r->session));
	if (r->session[0] == '\0' || http_header(req, "Authorization") != NULL)
		return true;
	const char *origin = http_header(req, "Origin");
	const char *site = http_header(req, "Sec-Fetch-Site");
	const char *host = http_header(req, "Host");
	char own[320];
	snprintf(own, sizeof(own), "%s://%s", http_tls(req) ? "https" : "http", host ? host : "");
	if ((origin == NULL || strcmp(origin, own) == 0) &&
	    (site == NULL || strcmp(site, "same-origin") == 0))
		return true;
	answer_error(req, 403, RPC_PERMISSION_DENIED,
	             "a call with the console's session must come from the console's own origin");
	return false;
}

/* The answer to SignIn sets the session cookie (and its body does not carry the secret); the
 * answer to SignOut clears it. */
static void session_cookie(struct http_request *req, const struct request *r, int code,
                           const ProtobufCMessage *resp, Coffer__Console__V1__Session *shown)
{
	char cookie[256];
	const char *secure = http_tls(req) ? "; Secure" : "";
	if (strcmp(r->m->path, SIGN_IN) == 0 && code == RPC_OK && resp != NULL) {
		*shown = *(const Coffer__Console__V1__Session *)resp;
		snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s",
		         shown->secret ? shown->secret : "", secure);
		shown->secret = (char *)"";
		http_set_header(req, "Set-Cookie", cookie);
		explicit_bzero(cookie, sizeof(cookie));
	} else if (strcmp(r->m->path, SIGN_OUT) == 0 || code == RPC_UNAUTHENTICATED) {
		snprintf(cookie, sizeof(cookie),
		         COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s", secure);
		if (r->session[0])
			http_set_header(req, "Set-Cookie", cookie);
	}
}

/* ---- unary ---- */

static void on_unary_done(void *arg, int code, const char *message, const ProtobufCMessage *resp,
                          bool retryable)
{
	struct request *r = arg;
	struct http_request *req = r->req;
	/* Connect carries a unary call's metadata as headers: a write refused UNAVAILABLE that
	 * wrote nothing may be sent again, as over gRPC. */
	if (retryable)
		http_set_header(req, RPC_RETRYABLE_KEY, "true");
	Coffer__Console__V1__Session shown;
	session_cookie(req, r, code, resp, &shown);
	if (strcmp(r->m->path, SIGN_IN) == 0 && code == RPC_OK && resp != NULL)
		resp = &shown.base;
	if (code != RPC_OK || resp == NULL) {
		answer_error(req, 0, code == RPC_OK ? RPC_INTERNAL : code, "%s", message);
		request_free(r);
		return;
	}
	if (r->enc == ENC_PROTO) {
		size_t n = protobuf_c_message_get_packed_size(resp);
		char *p = malloc(n ? n : 1);
		if (p != NULL) {
			protobuf_c_message_pack(resp, (uint8_t *)p);
			http_answer(req, 200, "application/proto", p,
			            n); /* the listener wipes it */
		} else {
			answer_error(req, 0, RPC_RESOURCE_EXHAUSTED, "out of memory");
		}
		request_free(r);
		return;
	}
	struct coffer_wbuf b = {0};
	/* JSON takes about half as much again as the binary form, plus names. */
	coffer_wbuf_reserve(&b, protobuf_c_message_get_packed_size(resp) * 3 / 2 + 256);
	if (pbjson_encode(resp, &b) != 0) {
		coffer_wbuf_free(&b);
		answer_error(req, 0, RPC_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		http_answer(req, 200, "application/json", b.p, b.len); /* the listener wipes it */
	}
	request_free(r);
}

static void run_unary(struct rpc_server *rpc, struct http_request *req, struct request *r)
{
	const char *md[2];
	struct rpc_local_req lr = local_req(req, r, md);
	int code = rpc_local_call(rpc, &lr, on_unary_done, r);
	if (code != 0) {
		answer_error(req, 0, code, "%s",
		             code == RPC_UNAVAILABLE ? "the server is shutting down"
		                                     : "cannot run the call");
		request_free(r);
	}
}

/* ---- server streams ---- */

/* A server stream between the runtime (ops, on its threads) and the listener (callbacks, on its
 * thread). The listener's side ends with closed; the runtime's with rpc_local_stream_closed,
 * called from closed; the stream is freed then. */
struct stream {
	pthread_mutex_t mu;          /* guards req */
	struct http_request *req;    /* NULL once the listener closed the answer */
	const coffer_method_desc *m; /* the method */
	enum encoding enc;           /* of the messages */
	struct rpc_ctx *ctx;         /* the call; NULL when the runtime refused it */
};

/* An enveloped message: flags, its length (big-endian), its bytes; malloc'd into *out. */
static bool envelope(uint8_t flags, const void *p, size_t n, char **out, size_t *len)
{
	*out = malloc(5 + n);
	if (*out == NULL)
		return false;
	(*out)[0] = (char)flags;
	(*out)[1] = (char)(n >> 24);
	(*out)[2] = (char)(n >> 16);
	(*out)[3] = (char)(n >> 8);
	(*out)[4] = (char)n;
	if (n)
		memcpy(*out + 5, p, n);
	*len = 5 + n;
	return true;
}

/* With s->mu held: queues an enveloped message of n bytes at p for the client. */
static void stream_put(struct stream *s, uint8_t flags, const void *p, size_t n)
{
	char *env;
	size_t len;
	if (s->req && envelope(flags, p, n, &env, &len))
		http_stream_write(s->req, env, len);
}

static void stream_message(void *arg, struct rpc_ctx *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	struct stream *s = arg;
	pthread_mutex_lock(&s->mu);
	if (s->enc == ENC_PROTO) {
		stream_put(s, 0, buf, len);
	} else {
		ProtobufCMessage *m = protobuf_c_message_unpack(s->m->output, NULL, len, buf);
		struct coffer_wbuf b = {0};
		if (m != NULL && pbjson_encode(m, &b) == 0)
			stream_put(s, 0, b.p, b.len);
		coffer_wbuf_free(&b);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	pthread_mutex_unlock(&s->mu);
	explicit_bzero(buf, len);
	free(buf);
}

/* The end-of-stream message: {} or {"error": {"code": ..., "message": ...}}. */
static void stream_end(void *arg, struct rpc_ctx *ctx, int code, const char *message)
{
	(void)ctx;
	struct stream *s = arg;
	char *err = NULL;
	size_t n = code == RPC_OK ? 0 : connect_error_body(code, message, &err);
	struct coffer_wbuf b = {0};
	coffer_wbuf_put(&b, "{", 1);
	if (err) {
		coffer_wbuf_put(&b, "\"error\":", 8);
		coffer_wbuf_put(&b, err, n);
	}
	coffer_wbuf_put(&b, "}", 1);
	free(err);
	pthread_mutex_lock(&s->mu);
	if (!b.failed)
		stream_put(s, FLAG_END_STREAM, b.p, b.len);
	if (s->req)
		http_stream_end(s->req);
	pthread_mutex_unlock(&s->mu);
	coffer_wbuf_free(&b);
}

static const struct rpc_local_stream_ops stream_ops = {
        .message = stream_message,
        .end = stream_end,
};

static void stream_written(void *arg)
{
	struct stream *s = arg;
	if (s->ctx)
		rpc_local_stream_sent(s->ctx);
}

static void stream_closed(void *arg, bool ok)
{
	struct stream *s = arg;
	pthread_mutex_lock(&s->mu);
	s->req = NULL;
	pthread_mutex_unlock(&s->mu);
	if (s->ctx)
		rpc_local_stream_closed(s->ctx, ok);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static const struct http_stream_cbs stream_cbs = {
        .written = stream_written,
        .closed = stream_closed,
};

/* A stream's request body is one enveloped message: its bytes into *msg, *len. False, answered,
 * when it is not. */
static bool unwrap(struct http_request *req, const char *body, size_t len, const char **msg,
                   size_t *n)
{
	const uint8_t *b = (const uint8_t *)body;
	size_t size =
	        len >= 5 ? (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4] : 0;
	if (len < 5 || size != len - 5) {
		answer_error(req, 0, RPC_INVALID_ARGUMENT,
		             "a stream's request is one enveloped message (5 bytes of prefix, then "
		             "the message)");
		return false;
	}
	if (b[0] & FLAG_COMPRESSED) {
		answer_error(req, 0, RPC_UNIMPLEMENTED,
		             "compressed messages are not served here; send identity");
		return false;
	}
	*msg = body + 5;
	*n = size;
	return true;
}

static void run_stream(struct rpc_server *rpc, struct http_request *req, struct request *r)
{
	struct stream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		answer_error(req, 0, RPC_RESOURCE_EXHAUSTED, "out of memory");
		request_free(r);
		return;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->req = req;
	s->m = r->m;
	s->enc = r->enc;
	const char *md[2];
	struct rpc_local_req lr = local_req(req, r, md);
	http_stream_open(req, 200,
	                 r->enc == ENC_JSON ? "application/connect+json"
	                                    : "application/connect+proto",
	                 &stream_cbs, s);
	/* Messages may come before this returns, on the runtime's threads; the listener's
	 * callbacks, which need s->ctx, run on its own thread, which is this one. */
	int code = rpc_local_stream(rpc, &lr, &stream_ops, s, &s->ctx);
	if (code != 0) {
		s->ctx = NULL;
		stream_end(s, NULL, code,
		           code == RPC_UNAVAILABLE ? "the server is shutting down"
		                                   : "cannot run the call");
	}
	request_free(r);
}

/* ---- the entry ---- */

void connect_handle(struct rpc_server *rpc, struct http_request *req)
{
	const char *path = http_path(req);
	const coffer_method_desc *m = rpc_server_method(rpc, path);
	if (m == NULL || m->client_streaming) {
		answer_error(
		        req, 404, RPC_UNIMPLEMENTED,
		        m ? "%s streams from the client, which Connect over HTTP/1.1 cannot carry"
		          : "no such method: %s",
		        path);
		return;
	}
	bool get = strcmp(http_method(req), "GET") == 0;
	if (strcmp(http_method(req), "POST") != 0 && !get) {
		http_set_header(req, "Allow", m->no_side_effects ? "GET, POST" : "POST");
		answer_error(req, 405, RPC_UNIMPLEMENTED, "%s is called with POST", path);
		return;
	}
	if (get && (!m->no_side_effects || m->server_streaming)) {
		http_set_header(req, "Allow", "POST");
		answer_error(req, 405, RPC_UNIMPLEMENTED,
		             m->server_streaming ? "%s is a stream: POST it"
		                                 : "%s has side effects: POST it, GET is for reads",
		             path);
		return;
	}
	struct request *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		answer_error(req, 0, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r->req = req;
	r->m = m;
	bool stream = m->server_streaming;
	const char *type = http_header(req, "Content-Type");
	const char *json = stream ? "application/connect+json" : "application/json";
	const char *proto = stream ? "application/connect+proto" : "application/proto";
	bool ok = same_origin(req, r) && read_headers(req, r, stream);
	if (ok && get) {
		ok = read_get(req, r);
	} else if (ok) {
		if (media_is(type, json) || media_is(type, proto)) {
			r->enc = media_is(type, json) ? ENC_JSON : ENC_PROTO;
			size_t len;
			const char *body = http_body(req, &len);
			if (stream)
				ok = unwrap(req, body, len, &body, &len);
			ok = ok && decode(req, r, body, len);
		} else {
			char accept[80];
			snprintf(accept, sizeof(accept), "%s, %s", json, proto);
			http_set_header(req, "Accept-Post", accept);
			answer_error(req, 415, RPC_INVALID_ARGUMENT,
			             "Content-Type must be %s or %s", json, proto);
			ok = false;
		}
	}
	if (!ok) {
		request_free(r);
		return;
	}
	if (stream)
		run_stream(rpc, req, r);
	else
		run_unary(rpc, req, r);
}
