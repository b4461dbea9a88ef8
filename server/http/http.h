/*
 * http.h - cofferd's HTTP/1.1 listeners: the only room that touches libmicrohttpd (and the GnuTLS
 * session it hands over for client certificates).
 *
 * A listener takes GET and HEAD requests (and POST with a body, when max_body_bytes allows one)
 * and hands each one, once its head and body are in, to the application's handler, which answers
 * at once or later from any thread with http_answer, or streams its answer (http_stream_open):
 * while it waits (for a call of the api) the request costs its memory, not a thread. Every
 * listener is bounded: connections at once and per client address, request head size (URL and
 * headers), the time a client may take to send its request head and then its body, the body's
 * size, and idle keep-alive time. Bodies, in and out, may hold values: they are wiped when freed.
 */
#ifndef COFFER_HTTP_H
#define COFFER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

struct http_server;
struct http_request;

/* A request whose head (and body) is in: answer it exactly once with http_answer or
 * http_stream_open, from any thread. */
typedef void (*http_handler_fn)(void *app, struct http_request *req);
/* The body of an error the listener answers by itself (a refused head, a body too large) for a
 * request of path: code is a gRPC status code (RPC_INVALID_ARGUMENT, ...); a malloc'd body into
 * *body (NULL: empty) and *type, and its length. NULL in http_opts: {"code": "INVALID_ARGUMENT",
 * "message": ...} as http_answer_error makes it. */
typedef size_t (*http_error_fn)(void *app, const char *path, int code, const char *message,
                                char **body, const char **type);

struct http_opts {
	const char *name;              /* for logs: "metrics", "http" */
	const char *listen;            /* host:port; port 0 picks one (http_port) */
	const char *tls_cert_pem;      /* server certificate chain (PEM); NULL: plaintext */
	const char *tls_key_pem;       /* its private key */
	const char *tls_client_ca_pem; /* when set, clients must present a certificate it signed */
	int max_connections;           /* at once (more than 0) */
	int max_per_address;           /* at once from one client address (more than 0) */
	int head_timeout_ms;           /* to send the request line and headers (0: the limit) */
	int idle_timeout_seconds; /* a keep-alive connection with nothing to do (0: the limit) */
	size_t max_head_bytes;    /* request line and headers (0: the limit); more: 431 or 414 */
	size_t max_body_bytes;    /* a POST's body; 0: no POST (GET and HEAD only) */
	int body_timeout_ms;      /* to send the body, from the end of the head (0: the limit) */
	http_handler_fn handler;
	http_error_fn error; /* NULL: the default error body */
	/* Whether a POST to path is served (asked from the head, before any body is read); NULL:
	 * every POST, within max_body_bytes. */
	bool (*takes_body)(void *app, const char *path);
	void *app;
};

/* Starts a listener with its own thread. 0, or a COF_E* code with e set. */
int http_start(const struct http_opts *opts, struct http_server **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* The bound TCP port. */
int http_port(const struct http_server *srv);
/* Connections open now (0 for NULL). */
unsigned int http_connections(const struct http_server *srv);
/* Stops taking new connections; those open may still send requests. NULL-safe. */
void http_quiesce(struct http_server *srv);
/* Stops taking connections, waits up to wait_ms until every request has been answered and its
 * answer sent, then closes everything and frees the listener. NULL-safe. */
void http_stop(struct http_server *srv, int wait_ms);

/* The request's method ("GET"), path (percent-decoded, without the query) and peer in gRPC's
 * form ("ipv4:10.0.0.7:51234", "ipv6:[::1]:5000"). */
const char *http_method(const struct http_request *req);
const char *http_path(const struct http_request *req);
const char *http_peer(const struct http_request *req);
/* The request's body (a POST's; *len 0 and "" when none), valid until the answer. */
const char *http_body(const struct http_request *req, size_t *len);
/* Whether the listener serves TLS. */
bool http_tls(const struct http_request *req);
/* A header's value (case-insensitive name) or a query argument's, or NULL. Valid until the
 * answer. */
const char *http_header(struct http_request *req, const char *name);
const char *http_query(struct http_request *req, const char *name);

/* Adds a header to the answer to come (before http_answer or http_stream_open): at most
 * HTTP_MAX_HEADERS of them, name and value copied (each under 256 bytes); more are dropped. */
#define HTTP_MAX_HEADERS 4
void http_set_header(struct http_request *req, const char *name, const char *value);

/* Answers req: status, Content-Type and body (len bytes; the listener takes it, malloc'd, and
 * wipes it before freeing it). Once per request, from any thread; NULL body: empty. */
void http_answer(struct http_request *req, int status, const char *content_type, char *body,
                 size_t len);
/* Answers req with status and the one shape every error takes: {"code": code, "message":
 * message} (code a status name, "NOT_FOUND"; both escaped as JSON strings). */
void http_answer_error(struct http_request *req, int status, const char *code, const char *message);
/* The JSON of an error, {"code": code, "message": message} (both escaped), malloc'd into *body;
 * its length. Out of memory: 0 and NULL (an empty body). */
size_t http_error_body(const char *code, const char *message, char **body);

/* ---- streamed answers ---- */

/* How a streamed answer goes: written(arg) once each chunk given to http_stream_write has been
 * taken by the connection; closed(arg, ok) once, when the answer is over (ok: ended and sent) or
 * the client has gone (!ok). Both on the listener's thread; after closed the request is gone and
 * nothing of it may be used. */
struct http_stream_cbs {
	void (*written)(void *arg);
	void (*closed)(void *arg, bool ok);
};
/* Answers req with status and content type and a body that comes in chunks (chunked transfer
 * coding), instead of http_answer. */
void http_stream_open(struct http_request *req, int status, const char *content_type,
                      const struct http_stream_cbs *cbs, void *arg);
/* Queues a chunk (malloc'd; the listener owns it now and wipes it when freed); any thread,
 * never after closed. */
void http_stream_write(struct http_request *req, char *buf, size_t len);
/* The answer ends after the chunks queued; any thread, never after closed. */
void http_stream_end(struct http_request *req);

#endif
