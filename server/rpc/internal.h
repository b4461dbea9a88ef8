/*
 * internal.h - what the files of the rpc room share, and nothing outside it sees (rpc.h is the
 * room's face).
 *
 * The room's files, from the top:
 *   server.c     start and stop
 *   loop.c       request slots posted on the one completion queue, calls that arrive in them,
 *                the threads that drain the queue, and the reaper that cancels clients who keep
 *                a call waiting
 *   local.c      the other transport: calls made inside the process (the HTTP endpoint)
 *   transport.c  the gRPC core transport: a call's batches (answer, messages, reads, close)
 *   call.c       admission and dispatch whatever carried the call, and the unary answer
 *   stream.c     streaming calls: the queue of messages out, reads in, finishing
 *   ctx.c        the call's context: set-up, accessors, its request, references, the end
 *   memory.c     the call's arena, and packing and unpacking messages (wiping what held values)
 * Each depends only on those below it in this list (scripts/check-layers checks it): a transport
 * reaches back into the runtime only through its functions' completions.
 *
 * Life of a call. A transport makes a struct rpc_ctx (rpc__ctx_new) and hands it to
 * rpc__call_dispatch, which admits it (max_calls, max_streams) and runs the application's entry.
 * Unary: the answer (now, or later through rpc_complete from any thread) goes out through the
 * transport's send_status; streams send through send_message. Every batch a transport has out
 * holds a reference on the call, and so does the application until it answers (unary) or
 * releases the stream; the last reference reports the call (on_call) and frees it.
 */
#ifndef COFFER_RPC_INTERNAL_H
#define COFFER_RPC_INTERNAL_H

#include <grpc/grpc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "list.h"
#include "rpc.h"

/* ---- memory.c ---- */

/* A chunk of a call's arena: allocations are carved from it in order, and the whole chunk is
 * wiped and freed when the call ends. */
struct arena_block {
	struct arena_block *next; /* older chunk */
	size_t size;              /* payload bytes */
	size_t used;              /* handed out so far */
	max_align_t payload[];    /* the memory handed out */
};

/* Wipes and frees the call's arena. */
void rpc__arena_free(struct rpc_ctx *ctx);
/* msg packed into malloc'd memory (*out, *len); false on OOM. Free with rpc__packed_free. */
bool rpc__pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len);
/* Wipes and frees packed bytes (a response may hold values). */
void rpc__packed_free(void *p, size_t len);
/* buf[0..len) unpacked as desc with the wiping allocator; NULL when it does not parse, or (with
 * *bad set to the field's name) when a string field is not UTF-8 or holds a NUL. */
ProtobufCMessage *rpc__unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                              size_t len, const char **bad);
/* The same without the UTF-8 check, for bytes this process packed itself (a kept answer). */
ProtobufCMessage *rpc__unpack_trusted(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                                      size_t len);

/* ---- transports ---- */

/*
 * How a call travels (PgBouncer's sbuf ops, hiredis's redisContextFuncs): gRPC core
 * (transport.c) or a caller inside the process (local.c). call.c and stream.c speak only
 * through these. Functions a transport cannot do are NULL (the local one has no streams).
 */
struct rpc_transport {
	const char *name; /* for the log */
	/* Unpacks the call's one request message as desc into *out and lets go of its bytes: 0; -1
	 * when the call carries no message; -2 when it does not parse (*bad: the string field that
	 * is not UTF-8 or holds a NUL, or NULL). */
	int (*take_request)(struct rpc_ctx *ctx, const ProtobufCMessageDescriptor *desc,
	                    ProtobufCMessage **out, const char **bad);
	/* The first value of request metadata key (lower case), copied into the arena; or NULL. */
	const char *(*metadata)(struct rpc_ctx *ctx, const char *key);
	/* Sends the final status (code, ctx->message), after resp when it is not NULL (a unary
	 * call's response). Once per call; takes what references it needs. */
	void (*send_status)(struct rpc_ctx *ctx, int code, const ProtobufCMessage *resp);
	/* Streams: whatever the transport needs before the first message (gRPC: the batch that
	 * hears the call end). False when the call is already over. */
	bool (*open_stream)(struct rpc_ctx *ctx);
	/* Streams, under ctx->mu: sends one packed message (the transport owns it now, and frees it
	 * even when it fails); its completion calls rpc__stream_sent. False when it cannot start.
	 */
	bool (*send_message)(struct rpc_ctx *ctx, uint8_t *packed, size_t len);
	/* Streams, under ctx->mu: asks for the next request message; its arrival calls
	 * rpc__stream_received. False when it cannot start. */
	bool (*read)(struct rpc_ctx *ctx);
	/* Ends the call now with CANCELLED and why (the client is gone or too slow, the stream was
	 * given up). */
	void (*cancel)(struct rpc_ctx *ctx, const char *why);
	/* Frees what the transport holds for the call (its end). */
	void (*release)(struct rpc_ctx *ctx);
};

extern const struct rpc_transport rpc__grpc_transport;
extern const struct rpc_transport rpc__local_transport;

/* What an event on the shared queue is about. */
enum rpc_tag_kind { TAG_SLOT, TAG_FINISH, TAG_READ, TAG_SEND, TAG_CLOSE };

struct rpc_tag {
	enum rpc_tag_kind kind; /* what completed */
	struct rpc_ctx *ctx;    /* its call (NULL for slots) */
};

/* A pre-posted request: what gRPC fills in when a call for `method` arrives. */
struct rpc_slot {
	struct rpc_tag tag;               /* first: the event's tag (TAG_SLOT) */
	struct rpc_server *srv;           /* owner */
	const coffer_method_desc *method; /* NULL: the catch-all for unknown methods */
	const void *handlers;             /* typed handler table of method's service */
	void *registered;                 /* grpc_server_register_method handle */
	grpc_call *call;                  /* the call, once notified */
	gpr_timespec deadline;            /* registered methods: the call's deadline */
	grpc_metadata_array md;           /* request metadata */
	grpc_byte_buffer *payload;        /* unary: the request message */
	grpc_call_details details;        /* catch-all: method and deadline */
	bool posted;                      /* waiting for a call */
};

/* A packed message waiting to be sent on a stream. */
struct out_msg {
	uint8_t *buf;         /* packed (wiped when freed) */
	size_t len;           /* its bytes */
	struct out_msg *next; /* the one queued after it */
};

struct rpc_stream {
	struct rpc_ctx *ctx;                 /* the call */
	const struct rpc_stream_handlers *h; /* the application's callbacks */
	void *arg;                           /* their argument */
	bool reading;                        /* the application wants request messages */
	bool half_closed;                    /* the client closed its side */
	bool sending;                        /* a message is out */
	struct out_msg *q_head, *q_tail;     /* messages not sent yet */
	size_t q_len;                        /* how many */
	bool finish_asked;                   /* rpc_stream_finish was called */
	int finish_code;                     /* with this code */
	bool finish_started;                 /* the status is out */
	bool done;                           /* the call is over */
	bool done_told;                      /* on_done was called */
	bool read_out;                       /* a read is out */
	bool released;                       /* the application let go */
};

/* The gRPC core transport's part of a call. */
struct rpc_grpc_call {
	grpc_call *call;                                  /* the transport call */
	grpc_metadata_array md;                           /* request metadata */
	grpc_byte_buffer *payload;                        /* the one request message, as it came */
	struct rpc_tag t_finish, t_read, t_send, t_close; /* tags of its batches */
	bool sent_initial_md;                             /* initial metadata goes out once */
	grpc_byte_buffer *answer_bb;                      /* a unary call's packed response */
	grpc_byte_buffer *recv_bb;                        /* streams: the message being read */
	grpc_byte_buffer *send_bb;                        /* streams: the message being sent */
	grpc_slice details;                               /* status message */
	grpc_metadata retry_md;                           /* coffer-retryable: true */
	int cancelled;                                    /* from RECV_CLOSE_ON_SERVER */
};

/* The local transport's part of a call. */
struct rpc_local_call {
	rpc_local_done_fn done;                 /* how a unary call answers */
	const struct rpc_local_stream_ops *ops; /* how a stream sends */
	void *arg;                              /* their argument */
	const char *label;                      /* what carried it ("connect"; static) */
	atomic_bool ended;  /* streams: ops->end was called, or the carrier closed */
	bool send_out;      /* streams: a message is with the carrier */
	bool status_out;    /* streams: the end is with the carrier */
	uint8_t *request;   /* the packed request (wiped when freed) */
	size_t request_len; /* its bytes */
	char **md;          /* 2 x n_md strings: key, value */
	size_t n_md;        /* pairs in md */
};

struct rpc_ctx {
	struct rpc_server *srv;                /* owner; NULL for a detached context */
	const struct rpc_transport *transport; /* what carries the call */
	const char *label;                     /* its name for the audit and the log (static) */
	const coffer_method_desc *method;      /* NULL: an unknown method */
	char *unknown_path;                    /* gpr-allocated path of an unknown method */
	const void *handlers;                  /* its service's handler table */
	ProtobufCMessage *req;                 /* the request, unpacked (wiping allocator) */
	ProtobufCMessage *resp;                /* unary: the response (arena) */
	uint8_t *packed;                       /* unary: the response already packed, or NULL */
	size_t packed_len;                     /* bytes in packed */
	struct arena_block *arena;             /* call-owned memory */
	char *message;                         /* status message, arena-owned */
	const char *project;                   /* for the call log */
	char *peer;                            /* gpr-allocated */
	struct timespec t0;                    /* when the call arrived */
	int64_t deadline_ms;                   /* monotonic ms of the client's deadline; 0: none */
	atomic_int refs;                       /* batches out, and the application's hold */
	pthread_mutex_t mu;                    /* streams: guards the stream's state */
	atomic_llong read_deadline; /* monotonic ms by which a read must complete; 0: none */
	atomic_llong send_deadline; /* the same for a send */
	struct list_node node;      /* in the server's calls in flight */
	bool cancel_sent;           /* the reaper cancelled it (under the list's lock) */
	bool is_stream;             /* a streaming call */
	bool oom;                   /* an arena allocation failed */
	bool retryable;             /* UNAVAILABLE with nothing written: say so */
	bool failed;                /* a batch failed or the client cancelled */
	int code;                   /* the status answered */
	struct rpc_stream stream;   /* streams only */
	union {
		struct rpc_grpc_call grpc;   /* transport rpc__grpc_transport */
		struct rpc_local_call local; /* transport rpc__local_transport */
	} t;
};

struct rpc_server {
	struct rpc_server_opts opts;  /* copy of the caller's options */
	grpc_server *server;          /* the core server */
	grpc_completion_queue *cq;    /* the one queue */
	struct rpc_slot *slots;       /* every request slot */
	size_t n_slots;               /* entries in slots */
	pthread_t *workers;           /* opts.workers of them */
	int n_started;                /* workers started */
	pthread_t reaper;             /* cancels clients that keep calls waiting */
	bool reaper_started;          /* whether it runs */
	int port;                     /* bound port */
	int max_calls, max_streams;   /* limits */
	atomic_int streams;           /* streaming calls in flight */
	atomic_bool shutting_down;    /* no more re-posting */
	atomic_uint_fast64_t next_id; /* request ids */
	pthread_mutex_t mu;           /* guards the list, n_calls and the shutdown state */
	pthread_cond_t cv;            /* signalled on shutdown_done and when n_calls drops */
	pthread_cond_t reaper_cv;     /* wakes the reaper to leave */
	struct list_node live;        /* calls in flight (struct rpc_ctx) */
	int n_calls;                  /* how many */
	bool shutdown_done;           /* the shutdown tag arrived */
	bool stopping;                /* the reaper leaves */
	bool stopped;                 /* rpc_server_shutdown finished */
	struct rpc_tag shutdown_tag;  /* its tag */
};

/* ---- ctx.c ---- */

/* A new call of method (NULL: unknown) on srv carried by transport, holding one reference (the
 * one rpc__call_dispatch passes on); NULL on OOM. deadline_ms: monotonic, 0 for none. */
struct rpc_ctx *rpc__ctx_new(struct rpc_server *srv, const struct rpc_transport *transport,
                             const coffer_method_desc *method, const void *handlers,
                             int64_t deadline_ms);
/* Takes a reference (a batch going out) / gives one back; the last one ends the call. */
void rpc__ctx_ref(struct rpc_ctx *ctx);
void rpc__ctx_unref(struct rpc_ctx *ctx);
/* Unpacks the request through the transport: RPC_OK, or the status (with its message) of a
 * request that is missing or does not parse. */
int rpc__ctx_take_request(struct rpc_ctx *ctx, const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **out);
/* The same for bytes a stream read: RPC_OK with *out, or INVALID_ARGUMENT with its message. */
int rpc__ctx_unpack(struct rpc_ctx *ctx, const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                    size_t len, ProtobufCMessage **out);
/* The status message that goes out with code: the one set, or the code's name ("" for OK). */
const char *rpc__ctx_message(struct rpc_ctx *ctx, int code);

/* ---- call.c ---- */

/* Runs a new call: UNIMPLEMENTED for an unknown method,
 * RESOURCE_EXHAUSTED over max_calls (unary) or max_streams, else the application's entry. */
void rpc__call_dispatch(struct rpc_ctx *ctx);
/* Ends the call with code now (a call that could not be set up); consumes the reference. */
void rpc__call_answer(struct rpc_ctx *ctx, int code);

/* ---- stream.c ---- */

/* Starts a streaming call (admitted): the transport's open_stream, then the entry. */
void rpc__stream_begin(struct rpc_ctx *ctx);
/* A send completed (transport). Consumes its reference. */
void rpc__stream_sent(struct rpc_ctx *ctx, bool ok);
/* A read completed (transport): a message's bytes (buf, len; NULL: bytes that are no message),
 * or end (the client closed its side), or !ok. Consumes its reference. */
void rpc__stream_received(struct rpc_ctx *ctx, bool ok, const uint8_t *buf, size_t len, bool end);
/* The status went out (ok) or did not. Consumes its reference. */
void rpc__stream_status_sent(struct rpc_ctx *ctx, bool ok);
/* The call is over (the client cancelled, or our status went out and it closed); cancelled as
 * the transport heard it. Consumes its reference. */
void rpc__stream_closed(struct rpc_ctx *ctx, bool ok, bool cancelled);

/* ---- transport.c ---- */

/* ctx (made by loop.c for a call that arrived in a slot) takes over the gRPC call, its metadata
 * (moved out of *md) and its one request message (NULL: none, or a client-streaming method). */
void rpc__grpc_adopt(struct rpc_ctx *ctx, grpc_call *call, grpc_metadata_array *md,
                     grpc_byte_buffer *payload);
/* A batch of a call completed (every tag but TAG_SLOT). */
void rpc__grpc_done(struct rpc_tag *t, bool ok);

/* ---- loop.c ---- */

/* A gRPC call arrived in slot: made into a call and dispatched; the slot is posted again. */
void rpc__grpc_arrived(struct rpc_server *srv, struct rpc_slot *slot, bool success);
/* Posts slot for the next call; false when gRPC refuses. */
bool rpc__slot_post(struct rpc_slot *slot);
/* The worker threads' and the reaper's bodies. */
void *rpc__worker_main(void *arg);
void *rpc__reaper_main(void *arg);

#endif
