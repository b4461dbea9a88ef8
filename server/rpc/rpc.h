/*
 * rpc.h - cofferd's gRPC runtime: the only room that touches the gRPC core API.
 *
 * One completion queue is shared by N worker threads and receives every new-call notification.
 * Each pre-posted request slot owns a pluck queue bound to its call, so a worker runs a call from
 * start to finish synchronously while the other workers keep taking new calls. Methods come from
 * the generated method tables (coffer_service_desc); a catch-all slot answers UNIMPLEMENTED for
 * unknown methods. The runtime parses the request and hands it, with a struct rpc_ctx (an arena,
 * the deadline, metadata and peer), to the application's unary or stream entry (server/api),
 * which owns everything else about the call; then it sends what the entry answered.
 */
#ifndef COFFER_RPC_H
#define COFFER_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer_rpc_meta.h"
#include "errors.h"

/* gRPC status codes, so that handlers need no gRPC header. */
enum rpc_code {
	RPC_OK = 0,
	RPC_CANCELLED = 1,
	RPC_UNKNOWN = 2,
	RPC_INVALID_ARGUMENT = 3,
	RPC_DEADLINE_EXCEEDED = 4,
	RPC_NOT_FOUND = 5,
	RPC_ALREADY_EXISTS = 6,
	RPC_PERMISSION_DENIED = 7,
	RPC_RESOURCE_EXHAUSTED = 8,
	RPC_FAILED_PRECONDITION = 9,
	RPC_ABORTED = 10,
	RPC_OUT_OF_RANGE = 11,
	RPC_UNIMPLEMENTED = 12,
	RPC_INTERNAL = 13,
	RPC_UNAVAILABLE = 14,
	RPC_DATA_LOSS = 15,
	RPC_UNAUTHENTICATED = 16,
};

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
	const char *method;  /* full path, "/coffer.v1.Projects/GetProject" */
	const char *project; /* set by the handler with rpc_note_project, or NULL */
	const char *peer;    /* transport peer */
	uint64_t request_id; /* process-unique, increasing */
	int code;            /* final status */
	double duration_ms;  /* from dispatch to status sent */
};

/* The application's entry for a unary call: answers req into resp (initialised, arena-owned) and
 * returns the status code; a non-OK code drops the response. handlers is the service's table. */
typedef int (*rpc_unary_fn)(void *app, struct rpc_ctx *ctx, const coffer_method_desc *m,
                            const void *handlers, const ProtobufCMessage *req,
                            ProtobufCMessage *resp);
/* The application's entry for a streaming call; returns the final status code. */
typedef int (*rpc_stream_fn)(void *app, struct rpc_ctx *ctx, const coffer_method_desc *m,
                             const void *handlers, struct rpc_stream *stream);

struct rpc_server_opts {
	const char *listen;    /* host:port; port 0 picks one (see rpc_server_port) */
	int workers;           /* threads on the shared queue */
	int slots_per_method;  /* pre-posted request slots per method */
	int max_message_bytes; /* larger requests: RESOURCE_EXHAUSTED */
	int stream_idle_ms;    /* a stream whose client sends nothing this long is cancelled */
	int send_timeout_ms;   /* a client that takes no answer this long is cancelled */
	int max_streams;      /* streaming calls at once; more: RESOURCE_EXHAUSTED (0: workers/2) */
	void *app;            /* handed to every entry and observer */
	rpc_unary_fn unary;   /* runs every unary call */
	rpc_stream_fn stream; /* runs every streaming call */
	/* After each call; may be NULL. */
	void (*on_call)(const struct rpc_call_info *info, void *app);
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
/* Graceful stop: no new calls; in-flight calls get grace_seconds, then are cancelled; then every
 * worker is joined. Safe to call once. */
void rpc_server_shutdown(struct rpc_server *srv, int grace_seconds);
/* Frees a server (shutting it down first if needed). NULL-safe. */
void rpc_server_free(struct rpc_server *srv);

/* Zeroed memory owned by the call, wiped and freed when the call ends. NULL only on OOM. */
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
/* Milliseconds left before the call's deadline; -1 when the client set none. */
int64_t rpc_remaining_ms(const struct rpc_ctx *ctx);
const char *rpc_peer(const struct rpc_ctx *ctx);
const char *rpc_method(const struct rpc_ctx *ctx);
/* The first value of request metadata `key` (lower case), or NULL; owned by the call. */
const char *rpc_metadata(struct rpc_ctx *ctx, const char *key);
/* Records the project a call concerns, for the call log. */
void rpc_note_project(struct rpc_ctx *ctx, const char *project);

/* Streaming handlers: reads the next request message into *out (free with rpc_message_free). 1: a
 * message; 0: the client closed its side; negative: the call failed or the message did not parse.
 */
int rpc_stream_read(struct rpc_stream *st, ProtobufCMessage **out);
/* Frees (and wipes) a message from rpc_stream_read. NULL-safe. */
void rpc_message_free(ProtobufCMessage *msg);
/* Sends one response message; 0 or negative when the call is gone. */
int rpc_stream_write(struct rpc_stream *st, const ProtobufCMessage *msg);

/* A context with an arena and no transport call (no metadata, no deadline), for driving the
 * application's entries without a network: the fuzz targets. Free with rpc_ctx_detached_free. */
struct rpc_ctx *rpc_ctx_detached(void);
void rpc_ctx_detached_free(struct rpc_ctx *ctx);
/* The status message set by rpc_fail ("" when none). */
const char *rpc_ctx_message(const struct rpc_ctx *ctx);

/* "NOT_FOUND" for 5, and so on. */
const char *rpc_code_name(int code);

#endif
