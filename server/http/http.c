/* http.c - HTTP/1.1 listeners over libmicrohttpd (see http.h). */
#include "http.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "coffer_limits.h"
#include "coffer_shared.h"
#include "list.h"
#include "log.h"

/* The TLS versions and suites offered (GnuTLS priorities): as the gRPC listener, TLS 1.2 and 1.3.
 */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* How often the watchdog looks for clients that are too slow to send a request head. */
#define WATCHDOG_MS 100

/* One connection, watched until it has sent its request head in time. */
struct conn_watch {
	int fd;
	int64_t since_ms;      /* connected, or finished its last request */
	int64_t limit_ms;      /* how long it may take from since_ms to a full request head */
	bool in_request;       /* its head is in: the request is the handler's */
	bool cut;              /* shut down by the watchdog */
	bool bad_escape;       /* its request's path held %00 or an encoded "/" */
	struct list_node node; /* in the listener's connections */
};

struct http_server {
	struct http_opts o;
	struct list_node streams; /* requests answering with a stream (struct http_request) */
	char *cert, *key, *ca;    /* copies, kept while the daemon runs */
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct list_node conns; /* every open connection (struct conn_watch) */
	int pending;            /* requests handed to the handler and not yet answered */
	int active;             /* requests from their head to their answer's last byte */
	MHD_socket quiesced_fd; /* the listen socket once quiesced (closed after the daemon) */
	pthread_t watchdog;
	bool watchdog_started, stop;
};

/* A chunk of a streamed answer. */
struct chunk {
	char *p;            /* its bytes (wiped when freed) */
	size_t len, off;    /* how many, and how many the connection has taken */
	struct chunk *next; /* the one queued after it */
};

struct http_request {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const char *method, *path;
	char peer[80];
	bool started;  /* handed to the handler (or answered before) */
	bool answered; /* the answer below is set */
	bool close;    /* the connection closes after the answer (its framing is in doubt) */
	bool post;     /* a POST: a body comes after the head */
	struct coffer_wbuf in; /* the body received so far (wiped when it grows and when freed) */
	int status;
	const char *type;
	char *body;
	size_t len;
	struct {
		char name[64], value[256];
	} headers[HTTP_MAX_HEADERS]; /* added to the answer */
	int n_headers;               /* how many */
	/* A streamed answer (http_stream_open): chunks go out as the connection takes them. */
	bool streaming;                    /* the answer is a stream */
	pthread_mutex_t smu;               /* guards the fields below, once streaming */
	struct chunk *q_head, *q_tail;     /* chunks not yet taken */
	bool s_ended;                      /* no chunk comes after those queued */
	bool s_parked;                     /* the connection waits (suspended) for a chunk */
	bool s_closed;                     /* closed was called */
	const struct http_stream_cbs *cbs; /* the application's callbacks */
	void *cbs_arg;                     /* their argument */
	struct list_node s_node;           /* in the listener's streams */
};

/* A response body: wiped before it is freed (it may hold values). */
struct body {
	char *p;
	size_t len;
};

static void body_free(void *cls)
{
	struct body *b = cls;
	if (b->p) {
		explicit_bzero(b->p, b->len);
		free(b->p);
	}
	free(b);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	const struct http_server *srv = cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("%s listener: %s", srv->o.name, msg);
}

static void fill_peer(struct http_request *r)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char host[INET6_ADDRSTRLEN] = "?";
	if (ci == NULL || ci->client_addr == NULL) {
		snprintf(r->peer, sizeof(r->peer), "unknown");
	} else if (ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ci->client_addr;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(r->peer, sizeof(r->peer), "ipv6:[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ci->client_addr;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(r->peer, sizeof(r->peer), "ipv4:%s:%u", host, ntohs(a->sin_port));
	}
}

/* With mTLS: whether the client presented a certificate the configured CA signed, fit for a TLS
 * client as gRPC's TLS checks it: an extended key usage, when present, names client
 * authentication; a key usage, when present, allows a signature or a key agreement. */
static bool client_certificate_ok(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return false;
	gnutls_session_t s = (gnutls_session_t)ci->tls_session;
	unsigned int n = 0, status = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(s, &n);
	if (chain == NULL || n == 0)
		return false;
	gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
	                                 .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
	if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) != 0 || status != 0)
		return false;
	gnutls_x509_crt_t crt;
	if (gnutls_x509_crt_init(&crt) != 0)
		return false;
	unsigned int usage = 0, critical = 0;
	bool ok = gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == 0;
	int rc = ok ? gnutls_x509_crt_get_key_usage(crt, &usage, &critical) : -1;
	if (ok && rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		ok = rc >= 0 && (usage & (GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_AGREEMENT));
	gnutls_x509_crt_deinit(crt);
	return ok;
}

/* Whether c may be in a header's name (RFC 9110, "token"). */
static bool token_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

struct framing {
	int content_lengths; /* Content-Length headers */
	bool bad_name; /* a header name with a space or another character a name cannot hold */
};

static enum MHD_Result look_at_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
	(void)kind;
	(void)value;
	struct framing *f = cls;
	if (*key == '\0')
		f->bad_name = true;
	for (const char *k = key; *k; k++)
		if (!token_char((unsigned char)*k))
			f->bad_name = true;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		f->content_lengths++;
	return MHD_YES;
}

/* Whether the head's framing is unambiguous (RFC 9112, section 6.3): no header name with a space
 * or another character a name cannot hold ("Content-Length : 5"), at most one Content-Length.
 * What a proxy in front and this server could read as two different requests is refused. */
static bool framing_ok(struct MHD_Connection *conn)
{
	struct framing f = {0};
	MHD_get_connection_values(conn, MHD_HEADER_KIND, look_at_header, &f);
	return !f.bad_name && f.content_lengths <= 1;
}

static struct conn_watch *watch_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* Percent-decodes s in place (libmicrohttpd's unescape callback, for the path and the query's
 * names and values); its new length. A %00 is left as it is and so is an encoded "/" in the
 * path (which starts with "/"): the request is refused (refuse_early) rather than read as
 * something shorter, or as more segments than it has. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	bool path = s[0] == '/';
	char *out = s;
	for (const char *in = s; *in;) {
		int hi = in[0] == '%' ? hex_digit(in[1]) : -1;
		int lo = hi >= 0 ? hex_digit(in[2]) : -1;
		int c = hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
		if (c < 0) {
			*out++ = *in++;
			continue;
		}
		if (c == 0 || (path && c == '/')) {
			struct conn_watch *w = watch_of(conn);
			if (w)
				w->bad_escape = true;
			memmove(out, in, 3);
			out += 3;
		} else {
			*out++ = (char)c;
		}
		in += 3;
	}
	*out = '\0';
	return (size_t)(out - s);
}

static void chunk_free(struct chunk *c)
{
	explicit_bzero(c->p, c->len);
	free(c->p);
	free(c);
}

/* libmicrohttpd asks for the next bytes of a streamed answer: what is queued, the end, or
 * nothing yet (the connection is suspended until http_stream_write or _end resumes it). The
 * application hears of each chunk taken, outside the lock. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct http_request *r = cls;
	size_t n = 0, taken = 0;
	pthread_mutex_lock(&r->smu);
	while (n < max && r->q_head) {
		struct chunk *c = r->q_head;
		size_t k = c->len - c->off < max - n ? c->len - c->off : max - n;
		memcpy(buf + n, c->p + c->off, k);
		n += k;
		c->off += k;
		if (c->off < c->len)
			break;
		r->q_head = c->next;
		if (r->q_head == NULL)
			r->q_tail = NULL;
		chunk_free(c);
		taken++;
	}
	bool end = n == 0 && r->s_ended;
	if (n == 0 && !end) {
		r->s_parked = true;
		MHD_suspend_connection(r->conn);
	}
	pthread_mutex_unlock(&r->smu);
	for (size_t i = 0; i < taken; i++)
		r->cbs->written(r->cbs_arg);
	return end ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static enum MHD_Result queue(struct http_request *r)
{
	struct MHD_Response *resp;
	if (r->streaming) {
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read,
		                                         r, NULL);
		if (resp == NULL)
			return MHD_NO;
	} else {
		struct body *b = calloc(1, sizeof(*b));
		if (b == NULL)
			return MHD_NO;
		b->p = r->body;
		b->len = r->len;
		r->body = NULL;
		resp = MHD_create_response_from_buffer_with_free_callback_cls(
		        b->len, b->p ? b->p : (char *)"", body_free, b);
		if (resp == NULL) {
			body_free(b);
			return MHD_NO;
		}
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	for (int i = 0; i < r->n_headers; i++)
		MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
	if (r->close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned int)r->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static void set_answer(struct http_request *r, int status, const char *type, char *body, size_t len)
{
	r->status = status;
	r->type = type ? type : "text/plain; charset=utf-8";
	r->body = body;
	r->len = body ? len : 0;
	r->answered = true;
}

static char *copy(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Whether the request announces a body. */
static bool has_body(struct MHD_Connection *conn)
{
	const char *len =
	        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                   MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL ||
	       (len != NULL && strspn(len, "0") != strlen(len));
}

/* Whether the body the request announces (Content-Length) is over max. */
static bool body_too_large(struct MHD_Connection *conn, size_t max)
{
	const char *len =
	        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (len == NULL)
		return false;
	char *end = NULL;
	unsigned long long n = strtoull(len, &end, 10);
	return end == len || *end != '\0' || n > max;
}

size_t http_error_body(const char *code, const char *message, char **body)
{
	struct coffer_wbuf b = {0};
	coffer_wbuf_put(&b, "{\"code\":", 8);
	coffer_wbuf_json(&b, code);
	coffer_wbuf_put(&b, ",\"message\":", 11);
	coffer_wbuf_json(&b, message);
	coffer_wbuf_put(&b, "}", 1);
	if (b.failed) {
		coffer_wbuf_free(&b);
		*body = NULL;
		return 0;
	}
	*body = b.p;
	return b.len;
}

void http_answer_error(struct http_request *req, int status, const char *code, const char *message)
{
	char *body = NULL;
	size_t len = http_error_body(code, message, &body);
	http_answer(req, status, "application/json", body, len);
}

/* An answer that the head alone decides (code: a gRPC status code): with close, the connection
 * closes after it, since what the client sends next cannot be trusted to be a request of its own.
 * The application shapes the error's body (http_opts.error), or error_body does. */
static void refuse(struct http_request *r, int status, int code, const char *message, bool close)
{
	char *body = NULL;
	const char *type = "application/json";
	const struct http_opts *o = &r->srv->o;
	size_t len = o->error ? o->error(o->app, r->path, code, message, &body, &type)
	                      : http_error_body(coffer_status_name(code), message, &body);
	r->close = close;
	set_answer(r, status, type, body, len);
}

/* Status codes of refusals (gRPC's, as the status table numbers them). */
enum {
	CODE_INVALID_ARGUMENT = 3,
	CODE_RESOURCE_EXHAUSTED = 8,
	CODE_UNIMPLEMENTED = 12,
	CODE_UNAUTHENTICATED = 16
};

/* Answers a request the head alone refuses: ambiguous framing, an escape a path may not hold, no
 * client certificate where one is required, a method not served, a GET with a body, a body over
 * the limit. */
static void refuse_early(struct http_request *r, const struct conn_watch *w)
{
	struct MHD_Connection *conn = r->conn;
	size_t max_body = r->srv->o.max_body_bytes;
	bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	const struct http_opts *o = &r->srv->o;
	bool posts = max_body > 0 && (o->takes_body == NULL || o->takes_body(o->app, r->path));
	if (!framing_ok(conn)) {
		refuse(r, 400, CODE_INVALID_ARGUMENT,
		       "the request's framing is ambiguous (a header name with a space, or several "
		       "Content-Length)",
		       true);
	} else if (w && w->bad_escape) {
		refuse(r, 400, CODE_INVALID_ARGUMENT, "a path may not hold %00 or an encoded /",
		       true);
	} else if (r->srv->ca && !client_certificate_ok(conn)) {
		refuse(r, 401, CODE_UNAUTHENTICATED,
		       "this listener requires a client certificate signed by its CA, for client "
		       "authentication",
		       false);
	} else if (!get && !(r->post && posts)) {
		http_set_header(r, "Allow", posts ? "GET, HEAD, POST" : "GET, HEAD");
		refuse(r, 405, CODE_UNIMPLEMENTED,
		       posts ? "only GET and POST are served here" : "only GET is served here",
		       true);
	} else if (get && has_body(conn)) {
		refuse(r, 400, CODE_INVALID_ARGUMENT, "a GET carries no body", true);
	} else if (r->post && body_too_large(conn, max_body)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the request's body is over %zu bytes", max_body);
		refuse(r, 413, CODE_RESOURCE_EXHAUSTED, msg, true);
	}
}

/* Appends a piece of the body (bounded by max_body_bytes): false, answered, when it is over. */
static bool take_body(struct http_request *r, const char *data, size_t n)
{
	size_t max = r->srv->o.max_body_bytes;
	if (n > max - r->in.len) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the request's body is over %zu bytes", max);
		refuse(r, 413, CODE_RESOURCE_EXHAUSTED, msg, true);
		return false;
	}
	if (coffer_wbuf_put(&r->in, data, n) != 0) {
		refuse(r, 503, 14, "out of memory", true);
		return false;
	}
	return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	(void)version;
	(void)upload_data;
	struct http_server *srv = cls;
	struct http_request *r = *con_cls;
	if (r == NULL) { /* the head is in */
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		r->srv = srv;
		r->conn = conn;
		r->method = method;
		r->path = url;
		r->post = strcmp(method, "POST") == 0;
		fill_peer(r);
		*con_cls = r;
		struct conn_watch *w = watch_of(conn);
		pthread_mutex_lock(&srv->mu);
		srv->active++;
		if (w && r->post) { /* the body has its own time to come */
			w->since_ms = clock_mono_ms();
			w->limit_ms = srv->o.body_timeout_ms;
		} else if (w) {
			w->in_request = true;
		}
		pthread_mutex_unlock(&srv->mu);
		refuse_early(r, w);
		/* An answer known from the head goes out now, before any body is read: the
		 * connection then closes, and no body, however slowly it comes, holds it. */
		if (r->answered) {
			r->started = true;
			return queue(r);
		}
		return MHD_YES;
	}
	if (*upload_data_size != 0) { /* a piece of a POST's body */
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->answered || take_body(r, upload_data, n))
			return MHD_YES;
		r->started = true;
		return queue(r);
	}
	if (!r->started) {
		r->started = true;
		struct conn_watch *w = r->post ? watch_of(conn) : NULL;
		if (w) { /* the body is in */
			pthread_mutex_lock(&srv->mu);
			w->in_request = true;
			pthread_mutex_unlock(&srv->mu);
		}
		if (!r->answered) {
			pthread_mutex_lock(&srv->mu);
			srv->pending++;
			pthread_mutex_unlock(&srv->mu);
			MHD_suspend_connection(conn);
			srv->o.handler(srv->o.app, r);
			return MHD_YES;
		}
	}
	return queue(r);
}

void http_set_header(struct http_request *r, const char *name, const char *value)
{
	if (r->n_headers == HTTP_MAX_HEADERS)
		return;
	snprintf(r->headers[r->n_headers].name, sizeof(r->headers[0].name), "%s", name);
	snprintf(r->headers[r->n_headers].value, sizeof(r->headers[0].value), "%s", value);
	r->n_headers++;
}

void http_answer(struct http_request *r, int status, const char *content_type, char *body,
                 size_t len)
{
	struct http_server *srv = r->srv;
	set_answer(r, status, content_type, body, len);
	pthread_mutex_lock(&srv->mu);
	srv->pending--;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	MHD_resume_connection(r->conn);
}

void http_stream_open(struct http_request *r, int status, const char *content_type,
                      const struct http_stream_cbs *cbs, void *arg)
{
	struct http_server *srv = r->srv;
	pthread_mutex_init(&r->smu, NULL);
	r->cbs = cbs;
	r->cbs_arg = arg;
	r->streaming = true;
	set_answer(r, status, content_type, NULL, 0);
	pthread_mutex_lock(&srv->mu);
	list_add(&srv->streams, &r->s_node);
	srv->pending--;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	MHD_resume_connection(r->conn);
}

/* With r->smu held: a connection waiting for a chunk goes on. */
static void stream_wake(struct http_request *r)
{
	if (r->s_parked) {
		r->s_parked = false;
		MHD_resume_connection(r->conn);
	}
}

void http_stream_write(struct http_request *r, char *buf, size_t len)
{
	struct chunk *c = calloc(1, sizeof(*c));
	if (c == NULL) { /* the answer cannot go on whole: it ends here */
		explicit_bzero(buf, len);
		free(buf);
		http_stream_end(r);
		return;
	}
	c->p = buf;
	c->len = len;
	pthread_mutex_lock(&r->smu);
	if (r->s_ended) {
		pthread_mutex_unlock(&r->smu);
		chunk_free(c);
		return;
	}
	if (r->q_tail)
		r->q_tail->next = c;
	else
		r->q_head = c;
	r->q_tail = c;
	stream_wake(r);
	pthread_mutex_unlock(&r->smu);
}

void http_stream_end(struct http_request *r)
{
	pthread_mutex_lock(&r->smu);
	r->s_ended = true;
	stream_wake(r);
	pthread_mutex_unlock(&r->smu);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct http_request *r = *con_cls;
	if (r) {
		if (r->streaming) {
			pthread_mutex_lock(&srv->mu);
			list_remove(&r->s_node);
			pthread_mutex_unlock(&srv->mu);
			pthread_mutex_lock(&r->smu);
			bool ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && r->s_ended &&
			          r->q_head == NULL;
			r->s_ended = true;
			pthread_mutex_unlock(&r->smu);
			r->cbs->closed(r->cbs_arg, ok);
			while (r->q_head) {
				struct chunk *c = r->q_head;
				r->q_head = c->next;
				chunk_free(c);
			}
			pthread_mutex_destroy(&r->smu);
		}
		if (r->body) {
			explicit_bzero(r->body, r->len);
			free(r->body);
		}
		coffer_wbuf_free(&r->in);
		explicit_bzero(r->headers, sizeof(r->headers)); /* a Set-Cookie holds a secret */
		free(r);
		*con_cls = NULL;
		pthread_mutex_lock(&srv->mu);
		srv->active--;
		pthread_cond_broadcast(&srv->cv);
		pthread_mutex_unlock(&srv->mu);
	}
	struct conn_watch *w = watch_of(conn);
	if (w) { /* keep-alive: the next request head has the idle time to come */
		pthread_mutex_lock(&srv->mu);
		w->in_request = false;
		w->bad_escape = false;
		w->since_ms = clock_mono_ms();
		w->limit_ms = (int64_t)srv->o.idle_timeout_seconds * 1000;
		pthread_mutex_unlock(&srv->mu);
	}
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *srv = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		struct conn_watch *w = calloc(1, sizeof(*w));
		*socket_context = w;
		if (w == NULL)
			return;
		const union MHD_ConnectionInfo *ci =
		        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		w->fd = ci ? ci->connect_fd : -1;
		w->since_ms = clock_mono_ms();
		w->limit_ms = srv->o.head_timeout_ms;
		pthread_mutex_lock(&srv->mu);
		list_add(&srv->conns, &w->node);
		pthread_mutex_unlock(&srv->mu);
	} else if (*socket_context) {
		struct conn_watch *w = *socket_context;
		pthread_mutex_lock(&srv->mu);
		list_remove(&w->node);
		pthread_mutex_unlock(&srv->mu);
		free(w);
		*socket_context = NULL;
	}
}

/* Cuts connections that have not sent a whole request head in time (one byte at a time is not
 * activity enough): libmicrohttpd's own timeout counts only idleness. */
static void *watchdog(void *arg)
{
	struct http_server *srv = arg;
	pthread_mutex_lock(&srv->mu);
	while (!srv->stop) {
		struct timespec until = clock_realtime_after_ms(WATCHDOG_MS);
		pthread_cond_timedwait(&srv->cv, &srv->mu, &until);
		int64_t now = clock_mono_ms();
		struct conn_watch *w;
		list_for_each_entry(w, &srv->conns, node)
		{
			if (w->in_request || w->cut || w->fd < 0 ||
			    now - w->since_ms <= w->limit_ms)
				continue;
			w->cut = true;
			shutdown(w->fd, SHUT_RDWR);
			log_debug("%s listener: a client took more than %lld ms to send a request; "
			          "closed",
			          srv->o.name, (long long)w->limit_ms);
		}
	}
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, struct cof_err *e)
{
	char host[256];
	snprintf(host, sizeof(host), "%s", listen);
	char *colon = strrchr(host, ':');
	if (colon == NULL)
		return cof_err_set(e, COF_EINVAL, "the address %s is not host:port", listen);
	*colon = '\0';
	const char *port = colon + 1;
	char *h = host;
	if (*h == '[') { /* [::1]:8443 */
		h++;
		h[strcspn(h, "]")] = '\0';
	}
	struct addrinfo hints = {
	        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(*h ? h : NULL, port, &hints, &ai) != 0 || ai == NULL)
		return cof_err_set(e, COF_EINVAL, "cannot resolve the address %s", listen);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

int http_start(const struct http_opts *opts, struct http_server **out, struct cof_err *e)
{
	*out = NULL;
	struct sockaddr_storage ss;
	int rc = parse_listen(opts->listen, &ss, e);
	if (rc)
		return rc;
	struct http_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	srv->o = *opts;
	if (srv->o.head_timeout_ms <= 0)
		srv->o.head_timeout_ms = LIMIT_HTTP_HEAD_MS;
	if (srv->o.idle_timeout_seconds <= 0)
		srv->o.idle_timeout_seconds = LIMIT_HTTP_IDLE_SECONDS;
	if (srv->o.max_head_bytes == 0)
		srv->o.max_head_bytes = LIMIT_HTTP_HEAD_BYTES;
	if (srv->o.body_timeout_ms <= 0)
		srv->o.body_timeout_ms = LIMIT_HTTP_BODY_MS;
	srv->cert = copy(opts->tls_cert_pem);
	srv->key = copy(opts->tls_key_pem);
	srv->ca = copy(opts->tls_client_ca_pem);
	srv->o.listen = NULL; /* the caller's string: used at start only */
	srv->quiesced_fd = MHD_INVALID_SOCKET;
	list_init(&srv->conns);
	list_init(&srv->streams);
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (srv->cert)
		flags |= MHD_USE_TLS;
	/* The connection memory pool holds the request head and the answer's head. */
	size_t pool = srv->o.max_head_bytes + 4096;
	/* One TLS policy with the gRPC listener: TLS 1.2 and 1.3 only. */
	struct MHD_OptionItem tls[] = {
	        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
	        {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->cert},
	        {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->key},
	        {srv->ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, srv->ca},
	        {MHD_OPTION_END, 0, NULL},
	};
	srv->d = MHD_start_daemon(
	        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_CONNECTION_LIMIT,
	        (unsigned int)srv->o.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	        (unsigned int)srv->o.max_per_address, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned int)srv->o.idle_timeout_seconds, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
	        on_connection, srv, MHD_OPTION_UNESCAPE_CALLBACK, unescape, srv, MHD_OPTION_ARRAY,
	        srv->cert ? tls : tls + 4, MHD_OPTION_END);
	if (srv->d == NULL) {
		http_stop(srv, 0);
		return cof_err_set(
		        e, COF_EUNAVAIL, "cannot listen for %s on %s%s", opts->name, opts->listen,
		        opts->tls_cert_pem ? " (or the TLS certificate or key is unusable)" : "");
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = di ? di->port : 0;
	if (pthread_create(&srv->watchdog, NULL, watchdog, srv) != 0) {
		http_stop(srv, 0);
		return cof_err_set(e, COF_EINTERNAL, "cannot start the %s watchdog", opts->name);
	}
	srv->watchdog_started = true;
	*out = srv;
	return 0;
}

int http_port(const struct http_server *srv)
{
	return srv ? srv->port : 0;
}

unsigned int http_connections(const struct http_server *srv)
{
	const union MHD_DaemonInfo *di =
	        srv && srv->d ? MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS)
	                      : NULL;
	return di ? di->num_connections : 0;
}

void http_quiesce(struct http_server *srv)
{
	if (srv == NULL || srv->d == NULL || srv->quiesced_fd != MHD_INVALID_SOCKET)
		return;
	/* libmicrohttpd's thread may still hold the socket, so it is closed only after the daemon
	 * stops; shut down, it stops listening now and new connections are refused. */
	srv->quiesced_fd = MHD_quiesce_daemon(srv->d);
	if (srv->quiesced_fd != MHD_INVALID_SOCKET)
		shutdown(srv->quiesced_fd, SHUT_RDWR);
}

void http_stop(struct http_server *srv, int wait_ms)
{
	if (srv == NULL)
		return;
	bool stuck = false;
	if (srv->d) {
		http_quiesce(srv);
		/* Until every request has been answered and its answer sent. */
		struct timespec until = clock_realtime_after_ms(wait_ms);
		pthread_mutex_lock(&srv->mu);
		while ((srv->pending > 0 || srv->active > 0) &&
		       pthread_cond_timedwait(&srv->cv, &srv->mu, &until) == 0)
			;
		stuck = srv->pending > 0;
		pthread_mutex_unlock(&srv->mu);
	}
	pthread_mutex_lock(&srv->mu);
	srv->stop = true;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	if (srv->watchdog_started)
		pthread_join(srv->watchdog, NULL);
	if (stuck) { /* a request still belongs to its handler: leave the listener to the exit */
		log_error("%s listener: %d requests still unanswered at shutdown", srv->o.name,
		          srv->pending);
		return;
	}
	/* Streamed answers end (a suspended connection must go on for the daemon to stop). */
	pthread_mutex_lock(&srv->mu);
	struct http_request *r;
	list_for_each_entry(r, &srv->streams, s_node) http_stream_end(r);
	pthread_mutex_unlock(&srv->mu);
	if (srv->d)
		MHD_stop_daemon(srv->d);
	if (srv->quiesced_fd != MHD_INVALID_SOCKET)
		close(srv->quiesced_fd);
	pthread_cond_destroy(&srv->cv);
	pthread_mutex_destroy(&srv->mu);
	free(srv->cert);
	if (srv->key) {
		explicit_bzero(srv->key, strlen(srv->key));
		free(srv->key);
	}
	free(srv->ca);
	free(srv);
}

const char *http_method(const struct http_request *req)
{
	return req->method;
}

const char *http_path(const struct http_request *req)
{
	return req->path;
}

const char *http_peer(const struct http_request *req)
{
	return req->peer;
}

const char *http_body(const struct http_request *req, size_t *len)
{
	*len = req->in.len;
	return req->in.p ? req->in.p : "";
}

bool http_tls(const struct http_request *req)
{
	return req->srv->cert != NULL;
}

const char *http_header(struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}
