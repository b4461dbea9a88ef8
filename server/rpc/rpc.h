/*
 * rpc.h - cofferd's gRPC runtime: the only room that touches the gRPC core API.
 *
 * No thread ever waits for a call. Every call is a small state machine on one completion queue
 * shared by the runtime's threads: a new call is parsed and handed, with a struct rpc_ctx (an
 * arena, the deadline, metadata and peer), to the application's unary or stream entry (server/
 * api). The entry answers at once, or returns RPC_PENDING and answers later, from any thread,
 * with rpc_complete: while it waits (for PostgreSQL, an audit commit, a revision) the call costs
 * its memory, not a thread. Streams are driven by callbacks (rpc_stream_start) and send from
 * any thread. Request slots are posted again as soon as a call arrives, so the number of calls
 * in flight is bounded by max_calls, not by threads; a reaper cancels clients that send nothing
 * on a stream (stream_idle_ms) or take no answer (send_timeout_ms). How the room is built inside:
 * internal.h.
 */
#ifndef COFFER_RPC_H
#define COFFER_RPC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer_rpc_meta.h"
#include "errors.h"

/* gRPC status codes, so that handlers need no gRPC header: RPC_OK, RPC_NOT_FOUND, ... from the
 * status table. */
enum rpc_code {
#define STATUS(code, name, http, connect) RPC_##name = code,
#include "coffer_status.def"
};

/* An entry's answer that comes later, through rpc_complete (unary) or rpc_stream_finish. */
#define RPC_PENDING (-1)

struct rpc_server;
struct rpc_ctx;
struct rpc_stream;

/* One service and the typed handler table that implements it (NULL entries: UNIMPLEMENTED). */
struct rpc_binding {
	const coffer_service_desc *service; /* generated method table */
	const void *handlers; /* generated typed handler table, filled by a handlers_*.c */
};

/* What the runtime tells the observer about each finished call. */
struct rpc_call_info {
	const char *method;    /* full path, "/coffer.v1.Projects/GetProject" */
	const char *project;   /* set by the handler with rpc_note_project, or NULL */
	const char *peer;      /* transport peer */
	const char *transport; /* what carried it: "grpc", "connect", "http" */
	uint64_t request_id;   /* process-unique, increasing */
	int code;              /* final status */
	double duration_ms;    /* from dispatch to status sent */
};

/* The application's entry for a unary call: answers req into resp (initialised, arena-owned; both
 * live until the call is answered) and returns the status code, or RPC_PENDING and calls
 * rpc_complete later. A non-OK code drops the response. handlers is the service's table. */
typedef int (*rpc_unary_fn)(void *app, struct rpc_ctx *ctx, const coffer_method_desc *m,
                            const void *handlers, const ProtobufCMessage *req,
                            ProtobufCMessage *resp);
/* The application's entry for a streaming call: a final status code (the stream ends at once), or
 * RPC_PENDING after rpc_stream_start. req: the one request of a server-streaming method (it
 * lives until the call ends), NULL when the client streams. */
typedef int (*rpc_stream_fn)(void *app, struct rpc_ctx *ctx, const coffer_method_desc *m,
                             const void *handlers, const ProtobufCMessage *req,
                             struct rpc_stream *stream);

struct rpc_server_opts {
	const char *listen; /* host:port; port 0 picks one (see rpc_server_port) */
	int workers;        /* threads on the shared queue */
	int max_calls; /* unary calls in flight at once; more: RESOURCE_EXHAUSTED (0: no bound) */
	int slots_per_method;  /* pre-posted request slots per method */
	int max_message_bytes; /* larger requests: RESOURCE_EXHAUSTED */
	int stream_idle_ms;    /* a stream whose client sends nothing this long is cancelled */
	int send_timeout_ms;   /* a client that takes no answer this long is cancelled */
	int max_streams;       /* streaming calls at once; more: RESOURCE_EXHAUSTED (0: no bound) */
	int max_streams_per_connection; /* HTTP/2 streams one connection carries (0: gRPC's bound)
	                                 */
	void *app;                      /* handed to every entry and observer */
	rpc_unary_fn unary;             /* runs every unary call */
	rpc_stream_fn stream;           /* runs every streaming call */
	/* After each call; may be NULL. */
	void (*on_call)(const struct rpc_call_info *info, void *app);
	/* At shutdown, when new calls stop (and again once in-flight calls were cancelled): answer
	 * soon every call that waits for something (parked calls, watch streams). May be NULL. */
	void (*on_drain)(void *app);
	const char *tls_cert_pem;      /* server certificate chain (PEM); NULL: plaintext */
	const char *tls_key_pem;       /* its private key (PEM) */
	const char *tls_client_ca_pem; /* when set, clients must present a certificate it signed */
};

/* Process-wide gRPC set-up and tear-down; call once each, around every server. */
void rpc_global_init(void);
void rpc_global_shutdown(void);

/* Creates, binds and starts the server with its workers. Returns 0 or a COF_E* code with e set. */
int rpc_server_start(const struct rpc_server_opts *opts, const struct rpc_binding *bindings,
                     size_t n_bindings, struct rpc_server **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* The bound TCP port. */
int rpc_server_port(const struct rpc_server *srv);
/* Graceful stop: no new calls; in-flight calls get grace_seconds, then are cancelled (and
 * on_drain runs); then, once every call is answered, the threads are joined. Safe to call once. */
void rpc_server_shutdown(struct rpc_server *srv, int grace_seconds);
/* Frees a server (shutting it down first if needed). NULL-safe. */
void rpc_server_free(struct rpc_server *srv);

/* Answers a call whose entry returned RPC_PENDING, with the response the entry was given when
 * code is RPC_OK. Any thread, exactly once; the call (its arena, request and response) may be
 * gone when it returns. */
void rpc_complete(struct rpc_ctx *ctx, int code);
/* Calls in flight now. */
int rpc_server_calls(struct rpc_server *srv);
/* A unary call answers packed[0..len) (malloc'd; the call owns it from here, and wipes and frees
 * it), the method's response already packed, instead of packing the response it was given: for
 * answers the application keeps. The last one given wins. */
void rpc_answer_packed(struct rpc_ctx *ctx, uint8_t *packed, size_t len);

/* Zeroed memory owned by the call, wiped and freed when the call ends. NULL only on OOM. One
 * thread at a time per call (the thread that holds the call). */
void *rpc_alloc(struct rpc_ctx *ctx, size_t n);
/* The trailing metadata that tells a client an UNAVAILABLE answer wrote nothing, so that even a
 * write may be sent again. */
#define RPC_RETRYABLE_KEY "coffer-retryable"
/* Sends RPC_RETRYABLE_KEY with an UNAVAILABLE status of this call. */
void rpc_mark_retryable(struct rpc_ctx *ctx);
/* Whether an rpc_alloc of this call failed (the answer must not claim success). */
bool rpc_out_of_memory(const struct rpc_ctx *ctx);
/* A copy of s (NULL stays NULL) in the call's arena. */
char *rpc_strdup(struct rpc_ctx *ctx, const char *s);
/* Sets the status message sent with code; returns code, so handlers can `return rpc_fail(...)`. */
int rpc_fail(struct rpc_ctx *ctx, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int rpc_failv(struct rpc_ctx *ctx, int code, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
/* Forgets a status message set earlier (a call that is run again from the start). */
void rpc_clear_message(struct rpc_ctx *ctx);
/* Milliseconds left before the call's deadline; -1 when the client set none. */
int64_t rpc_remaining_ms(const struct rpc_ctx *ctx);
const char *rpc_peer(const struct rpc_ctx *ctx);
const char *rpc_method(const struct rpc_ctx *ctx);
/* The first value of request metadata `key` (lower case), or NULL; owned by the call. */
const char *rpc_metadata(struct rpc_ctx *ctx, const char *key);
/* Records the project a call concerns, for the call log. */
void rpc_note_project(struct rpc_ctx *ctx, const char *project);

/* ---- streams ---- */

struct rpc_stream_handlers {
	/* A request message (the callee owns it: rpc_message_free), or NULL when the client closed
	 * its side. On a runtime thread; the next message is asked for when it returns, until the
	 * client closes its side or the stream finishes. A message that does not parse ends the
	 * stream with INVALID_ARGUMENT. */
	void (*on_read)(struct rpc_stream *st, ProtobufCMessage *msg, void *arg);
	/* The call is over: answered and closed, cancelled, or broken; code is what the client saw.
	 * Once, on a runtime thread. The stream stays valid until rpc_stream_release. */
	void (*on_done)(struct rpc_stream *st, int code, void *arg);
};

/* Takes over a stream from its entry (which then returns RPC_PENDING), or from another thread
 * later: h's callbacks get arg (a later call replaces them); with read, the runtime reads request
 * messages (a client that sends none for stream_idle_ms is cancelled). When the call is already
 * over, h->on_done runs now, on this thread. */
void rpc_stream_start(struct rpc_stream *st, const struct rpc_stream_handlers *h, void *arg,
                      bool read);
/* Queues one response message (packed now); any thread. 0, or -1 when the stream is over or the
 * client has more than max_queued messages it has not taken. */
int rpc_stream_send(struct rpc_stream *st, const ProtobufCMessage *msg, size_t max_queued);
/* Ends the stream with code once the queued messages are sent; any thread; the first call wins. */
void rpc_stream_finish(struct rpc_stream *st, int code);
/* The same with a status message (any thread: the message is set under the stream's lock). */
void rpc_stream_fail(struct rpc_stream *st, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* The application is done with the stream (after on_done, or to give it up: the stream is
 * cancelled if still open). Exactly once, after rpc_stream_start. */
void rpc_stream_release(struct rpc_stream *st);
/* The call of a stream. */
struct rpc_ctx *rpc_stream_ctx(struct rpc_stream *st);
/* Frees (and wipes) a message from on_read. NULL-safe. */
void rpc_message_free(ProtobufCMessage *msg);

/* ---- calls from another transport (the HTTP listener: REST reads and Connect) ---- */

/* How a local call ends: code, its status message ("" for OK), the response (valid only during
 * the callback; NULL unless OK), and whether an UNAVAILABLE wrote nothing (RPC_RETRYABLE_KEY).
 * Once, from any thread (possibly inside rpc_local_call). */
typedef void (*rpc_local_done_fn)(void *arg, int code, const char *message,
                                  const ProtobufCMessage *resp, bool retryable);

/* A call made inside the process, as a gRPC client would make it. */
struct rpc_local_req {
	const char *path;      /* "/coffer.v1.Secrets/ResolveSecrets" */
	const uint8_t *packed; /* the request message, packed */
	size_t len;            /* its bytes */
	const char *const *md; /* n_md pairs of request metadata, flat: key, value, ... */
	size_t n_md;           /* (lower-case keys) */
	const char *peer;      /* in gRPC's form: "ipv4:10.0.0.7:51234" */
	const char *transport; /* what carried it, for the audit row and the log: "connect" */
	int64_t timeout_ms;    /* the call's deadline from now; 0: none */
};

/* The method of path among the server's bindings, or NULL. */
const coffer_method_desc *rpc_server_method(const struct rpc_server *srv, const char *path);

/* Runs a unary method on r's request exactly as a gRPC call of it: the same entry, limits
 * (max_calls), deadline, call log and metrics. 0, or a code (NOT_FOUND: no such unary method;
 * UNAVAILABLE: shutting down; RESOURCE_EXHAUSTED: out of memory) without calling done. */
int rpc_local_call(struct rpc_server *srv, const struct rpc_local_req *r, rpc_local_done_fn done,
                   void *arg);

/* How a local server-streaming call sends. message and end are called under the call's lock:
 * they hand their bytes on and return, and never call back into the runtime. */
struct rpc_local_stream_ops {
	/* A response message, packed (the callee owns buf and wipes it): once it has gone out,
	 * the callee calls rpc_local_stream_sent. One at a time. */
	void (*message)(void *arg, struct rpc_ctx *ctx, uint8_t *buf, size_t len);
	/* The final status (code, message: "" for OK, or why the call was cancelled): nothing
	 * follows. Once. The callee ends its answer and calls rpc_local_stream_closed. */
	void (*end)(void *arg, struct rpc_ctx *ctx, int code, const char *message);
};

/* Runs a server-streaming method as rpc_local_call runs a unary one (max_streams instead of
 * max_calls). ops get arg. 0 with the call in *out (set before anything is sent: ops may run on
 * other threads before this returns), or a code as rpc_local_call's, without calling ops.
 * Whatever happens after 0, the caller calls rpc_local_stream_closed(*out) exactly once, after
 * end or when its client has gone; *out stays valid until then. */
int rpc_local_stream(struct rpc_server *srv, const struct rpc_local_req *r,
                     const struct rpc_local_stream_ops *ops, void *arg, struct rpc_ctx **out);
/* The message handed to ops->message has gone out: the next may come. Any thread. */
void rpc_local_stream_sent(struct rpc_ctx *ctx);
/* The local stream is over for its carrier: ok, its end went out; !ok, the client has gone (the
 * call is cancelled). Any thread, once; ctx may be gone when it returns. */
void rpc_local_stream_closed(struct rpc_ctx *ctx, bool ok);

/* What carried the call: "grpc", or the transport a local call named. */
const char *rpc_transport(const struct rpc_ctx *ctx);

/* A context with an arena and no transport call (no metadata, no deadline), for driving the
 * application's entries without a network: the fuzz targets. Free with rpc_ctx_detached_free. */
struct rpc_ctx *rpc_ctx_detached(void);
/* The code an entry that returned RPC_PENDING on a detached context completes it with (waits). */
int rpc_ctx_detached_wait(struct rpc_ctx *ctx);
void rpc_ctx_detached_free(struct rpc_ctx *ctx);
/* The status message set by rpc_fail ("" when none). */
const char *rpc_ctx_message(const struct rpc_ctx *ctx);

/* "NOT_FOUND" for 5, and so on. */
const char *rpc_code_name(int code);

#endif
