/*
 * rpc.c - the gRPC core runtime (see rpc.h). The only server file that includes gRPC headers.
 *
 * Life of a call. A pre-posted slot fires on the shared queue: the call moves into a new struct
 * rpc_ctx and the slot is posted again at once. Unary: the request is unpacked and the entry
 * runs; its answer (now, or later through rpc_complete from any thread) goes out in one batch
 * (initial metadata, message, status, close), whose completion frees the call. Streams: a close
 * batch is posted first (it completes when the call ends, whoever ends it); reads, sends and the
 * status are batches of their own, one of each kind at a time. Every batch holds a reference on
 * the call, and so does the application until it answers (unary) or releases the stream; the
 * last reference reports the call (on_call) and frees it. A reaper thread cancels calls whose
 * client sends nothing or takes nothing for too long.
 */
#include "rpc.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/string_util.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "coffer_shared.h"
#include "log.h"
#include "wire.h"

/* How often the reaper looks for clients that keep a call waiting. */
#define REAPER_PERIOD_MS    100
#define DEFAULT_MAX_CALLS   10000
#define DEFAULT_MAX_STREAMS 1000

/* A chunk of a call's arena: allocations are carved from it in order, and the whole chunk is
 * wiped and freed when the call ends. */
struct arena_block {
	struct arena_block *next; /* older chunk */
	size_t size;              /* payload bytes */
	size_t used;              /* handed out so far */
	max_align_t payload[];    /* the memory handed out */
};

/* Chunks hold this much (a resolve of 50 secrets fits in one or two); larger requests get a
 * chunk of their own. The first chunk is small: a call that waits holds little. */
#define ARENA_CHUNK 8192
#define ARENA_FIRST 1024

/* What an event on the shared queue is about. */
enum tag_kind { TAG_SLOT, TAG_FINISH, TAG_READ, TAG_SEND, TAG_CLOSE };

struct rpc_tag {
	enum tag_kind kind;  /* what completed */
	struct rpc_ctx *ctx; /* its call (NULL for slots) */
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

/* A message waiting to be sent on a stream. */
struct out_msg {
	grpc_byte_buffer *bb;
	struct out_msg *next;
};

struct rpc_stream {
	struct rpc_ctx *ctx;                 /* the call */
	const struct rpc_stream_handlers *h; /* the application's callbacks */
	void *arg;                           /* their argument */
	bool reading;                        /* the application wants request messages */
	bool half_closed;                    /* the client closed its side */
	bool sending;                        /* a send batch is out */
	struct out_msg *q_head, *q_tail;     /* messages not sent yet */
	size_t q_len;                        /* how many */
	bool finish_asked;                   /* rpc_stream_finish was called */
	int finish_code;                     /* with this code */
	bool finish_started;                 /* the status batch is out */
	bool done;                           /* the call is over */
	bool done_told;                      /* on_done was called */
	bool read_out;                       /* a read batch is out */
	bool released;                       /* the application let go */
	grpc_byte_buffer *recv_bb;           /* the message being read */
	grpc_byte_buffer *send_bb;           /* the message being sent */
};

struct rpc_ctx {
	struct rpc_server *srv;           /* owner; NULL for a detached context */
	const coffer_method_desc *method; /* NULL: an unknown method */
	const void *handlers;             /* its service's handler table */
	char *unknown_path;               /* gpr-allocated path of an unknown method */
	grpc_call *call;                  /* the transport call */
	gpr_timespec deadline;            /* the client's deadline */
	grpc_metadata_array md;           /* request metadata */
	grpc_byte_buffer *payload;        /* unary: the request as it came */
	ProtobufCMessage *req;            /* unary: the request, unpacked (wiping allocator) */
	ProtobufCMessage *resp;           /* unary: the response (arena) */
	struct arena_block *arena;        /* call-owned memory */
	char *message;                    /* status message, arena-owned */
	const char *project;              /* for the call log */
	char *peer;                       /* gpr-allocated */
	struct timespec t0;               /* when the call arrived */
	struct rpc_tag t_finish, t_read, t_send, t_close; /* tags of its batches */
	atomic_int refs;             /* batches out, and the application's hold */
	pthread_mutex_t mu;          /* streams: guards the stream's state */
	atomic_llong read_deadline;  /* monotonic ms by which a read must complete; 0: none */
	atomic_llong send_deadline;  /* the same for a send */
	struct rpc_ctx *prev, *next; /* the server's list of calls in flight */
	bool cancel_sent;            /* the reaper cancelled it (under the list's lock) */
	bool is_stream;              /* a streaming call */
	bool sent_initial_md;        /* initial metadata goes out once */
	bool oom;                    /* an arena allocation failed */
	bool retryable;              /* UNAVAILABLE with nothing written: say so */
	bool failed;                 /* a batch failed or the client cancelled */
	int code;                    /* the status answered */
	/* the answer batch */
	grpc_byte_buffer *answer_bb; /* packed response */
	grpc_slice details;          /* status message */
	grpc_metadata retry_md;      /* coffer-retryable: true */
	int cancelled;               /* from RECV_CLOSE_ON_SERVER */
	struct rpc_stream stream;    /* streams only */
	/* a local call (rpc_local_call): no transport call */
	rpc_local_done_fn local_done; /* how it answers; NULL: a gRPC call */
	void *local_arg;              /* its argument */
	char **local_md;              /* 2 x n_local_md strings: key, value */
	size_t n_local_md;
	int64_t local_deadline_ms; /* monotonic; 0: none */
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
	struct rpc_ctx *live;         /* calls in flight */
	int n_calls;                  /* how many */
	bool shutdown_done;           /* the shutdown tag arrived */
	bool stopping;                /* the reaper leaves */
	bool stopped;                 /* rpc_server_shutdown finished */
	struct rpc_tag shutdown_tag;  /* its tag */
};

const char *rpc_code_name(int code)
{
	return coffer_status_name(code);
}

/* ---- arena and message memory ---- */

void *rpc_alloc(struct rpc_ctx *ctx, size_t n)
{
	const size_t align = sizeof(max_align_t);
	size_t need = n ? (n + align - 1) / align * align : align;
	struct arena_block *b = ctx->arena;
	if (b == NULL || b->size - b->used < need) {
		size_t chunk = b == NULL ? ARENA_FIRST : ARENA_CHUNK;
		size_t size = need > chunk / 4 ? need : chunk;
		struct arena_block *fresh = malloc(sizeof(*fresh) + size);
		if (fresh == NULL) {
			ctx->oom = true;
			return NULL;
		}
		fresh->size = size;
		fresh->used = 0;
		if (b != NULL && size != chunk) {
			/* A large allocation: keep carving from the current chunk afterwards. */
			fresh->next = b->next;
			b->next = fresh;
			fresh->used = need;
			return memset(fresh->payload, 0, need);
		}
		fresh->next = b;
		ctx->arena = b = fresh;
	}
	void *p = (char *)b->payload + b->used;
	b->used += need;
	return memset(p, 0, need);
}

char *rpc_strdup(struct rpc_ctx *ctx, const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = rpc_alloc(ctx, n);
	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static void arena_free(struct rpc_ctx *ctx)
{
	while (ctx->arena) {
		struct arena_block *b = ctx->arena;
		ctx->arena = b->next;
		explicit_bzero(b->payload, b->used);
		free(b);
	}
}

/* protobuf-c allocator whose frees wipe: unpacked requests may hold plaintext values. */
static void *wiping_alloc(void *data, size_t size)
{
	(void)data;
	size_t *p = malloc(sizeof(max_align_t) + size);
	if (p == NULL)
		return NULL;
	*p = size;
	return (char *)p + sizeof(max_align_t);
}

static void wiping_free(void *data, void *ptr)
{
	(void)data;
	if (ptr == NULL)
		return;
	size_t *p = (size_t *)((char *)ptr - sizeof(max_align_t));
	explicit_bzero(ptr, *p);
	free(p);
}

static ProtobufCAllocator wiping_allocator = {wiping_alloc, wiping_free, NULL};

void rpc_message_free(ProtobufCMessage *msg)
{
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, &wiping_allocator);
}

/* Slice destroy callback for packed responses: wipe, then free. */
static void wipe_packed(void *p, size_t len)
{
	explicit_bzero(p, len);
	free(p);
}

static grpc_byte_buffer *pack_message(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(msg, buf);
	grpc_slice slice = grpc_slice_new_with_len(buf, len, wipe_packed);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

/* Reads and unpacks bb as desc; NULL when it does not parse, or (with *bad_field set) when a
 * string field is not UTF-8 or holds a NUL. */
static ProtobufCMessage *unpack_message(const ProtobufCMessageDescriptor *desc,
                                        grpc_byte_buffer *bb, const char **bad_field)
{
	grpc_byte_buffer_reader reader;
	*bad_field = NULL;
	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return NULL;
	grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	ProtobufCMessage *msg = NULL;
	*bad_field = wire_bad_string(desc, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
	if (*bad_field == NULL)
		msg = protobuf_c_message_unpack(desc, &wiping_allocator, GRPC_SLICE_LENGTH(all),
		                                GRPC_SLICE_START_PTR(all));
	explicit_bzero(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
	grpc_slice_unref(all);
	return msg;
}

/* ---- context accessors ---- */

int rpc_fail(struct rpc_ctx *ctx, int code, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ctx->message = rpc_strdup(ctx, buf);
	return code;
}

void rpc_clear_message(struct rpc_ctx *ctx)
{
	ctx->message = NULL;
}

int64_t rpc_remaining_ms(const struct rpc_ctx *ctx)
{
	if (ctx->local_done) {
		if (ctx->local_deadline_ms == 0)
			return -1;
		int64_t left = ctx->local_deadline_ms - clock_mono_ms();
		return left < 0 ? 0 : left;
	}
	if (ctx->call == NULL)
		return -1;
	gpr_timespec dl = ctx->deadline;
	if (gpr_time_cmp(dl, gpr_inf_future(dl.clock_type)) == 0)
		return -1;
	gpr_timespec now = gpr_now(dl.clock_type);
	int64_t ms = gpr_time_to_millis(gpr_time_sub(dl, now));
	return ms < 0 ? 0 : ms;
}

const char *rpc_peer(const struct rpc_ctx *ctx)
{
	return ctx->peer ? ctx->peer : "";
}

const char *rpc_method(const struct rpc_ctx *ctx)
{
	return ctx->method ? ctx->method->path : ctx->unknown_path ? ctx->unknown_path : "";
}

const char *rpc_metadata(struct rpc_ctx *ctx, const char *key)
{
	for (size_t i = 0; i < ctx->n_local_md; i++)
		if (strcmp(ctx->local_md[2 * i], key) == 0)
			return rpc_strdup(ctx, ctx->local_md[2 * i + 1]);
	const grpc_metadata_array *md = &ctx->md;
	size_t klen = strlen(key);
	for (size_t i = 0; i < md->count; i++) {
		const grpc_slice *k = &md->metadata[i].key;
		if (GRPC_SLICE_LENGTH(*k) == klen &&
		    memcmp(GRPC_SLICE_START_PTR(*k), key, klen) == 0) {
			const grpc_slice *v = &md->metadata[i].value;
			size_t vlen = GRPC_SLICE_LENGTH(*v);
			char *out = rpc_alloc(ctx, vlen + 1);
			if (out)
				memcpy(out, GRPC_SLICE_START_PTR(*v), vlen);
			return out;
		}
	}
	return NULL;
}

void rpc_note_project(struct rpc_ctx *ctx, const char *project)
{
	ctx->project = rpc_strdup(ctx, project);
}

bool rpc_out_of_memory(const struct rpc_ctx *ctx)
{
	return ctx->oom;
}

void rpc_mark_retryable(struct rpc_ctx *ctx)
{
	ctx->retryable = true;
}

struct rpc_ctx *rpc_ctx_detached(void)
{
	return calloc(1, sizeof(struct rpc_ctx));
}

const char *rpc_ctx_message(const struct rpc_ctx *ctx)
{
	return ctx->message ? ctx->message : "";
}

int rpc_ctx_detached_wait(struct rpc_ctx *ctx)
{
	while (atomic_load(&ctx->refs) != -1)
		nanosleep(&(struct timespec){0, 100000}, NULL);
	return ctx->code;
}

void rpc_ctx_detached_free(struct rpc_ctx *ctx)
{
	if (ctx == NULL)
		return;
	arena_free(ctx);
	free(ctx);
}

int rpc_server_calls(struct rpc_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	int n = srv->n_calls;
	pthread_mutex_unlock(&srv->mu);
	return n;
}

/* ---- the life of a call ---- */

static void live_add(struct rpc_ctx *ctx)
{
	struct rpc_server *srv = ctx->srv;
	pthread_mutex_lock(&srv->mu);
	ctx->next = srv->live;
	if (srv->live)
		srv->live->prev = ctx;
	srv->live = ctx;
	srv->n_calls++;
	pthread_mutex_unlock(&srv->mu);
}

static void live_remove(struct rpc_ctx *ctx)
{
	struct rpc_server *srv = ctx->srv;
	pthread_mutex_lock(&srv->mu);
	if (ctx->prev)
		ctx->prev->next = ctx->next;
	else
		srv->live = ctx->next;
	if (ctx->next)
		ctx->next->prev = ctx->prev;
	srv->n_calls--;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
}

/* The call is over and nothing refers to it: report it and free it. Leaving the list of calls in
 * flight is the last thing it does with the server, which a shutdown may free right after. */
static void ctx_end(struct rpc_ctx *ctx)
{
	struct rpc_server *srv = ctx->srv;
	if (srv->opts.on_call) {
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		struct rpc_call_info info = {
		        .method = rpc_method(ctx),
		        .project = ctx->project,
		        .peer = rpc_peer(ctx),
		        .request_id = atomic_fetch_add(&srv->next_id, 1) + 1,
		        .code = ctx->code,
		        .duration_ms = (double)(t1.tv_sec - ctx->t0.tv_sec) * 1e3 +
		                       (double)(t1.tv_nsec - ctx->t0.tv_nsec) / 1e6,
		};
		srv->opts.on_call(&info, srv->opts.app);
	}
	if (ctx->is_stream) {
		atomic_fetch_sub(&srv->streams, 1);
		for (struct out_msg *m = ctx->stream.q_head, *next; m; m = next) {
			next = m->next;
			grpc_byte_buffer_destroy(m->bb);
			free(m);
		}
		pthread_mutex_destroy(&ctx->mu);
	}
	if (ctx->req)
		protobuf_c_message_free_unpacked(ctx->req, &wiping_allocator);
	if (ctx->payload)
		grpc_byte_buffer_destroy(ctx->payload);
	if (ctx->answer_bb)
		grpc_byte_buffer_destroy(ctx->answer_bb);
	grpc_slice_unref(ctx->details);
	grpc_metadata_array_destroy(&ctx->md);
	gpr_free(ctx->unknown_path);
	gpr_free(ctx->peer);
	if (ctx->call)
		grpc_call_unref(ctx->call);
	for (size_t i = 0; i < 2 * ctx->n_local_md; i++) {
		explicit_bzero(ctx->local_md[i], strlen(ctx->local_md[i]));
		free(ctx->local_md[i]);
	}
	free(ctx->local_md);
	live_remove(ctx);
	arena_free(ctx);
	free(ctx);
}

static void ctx_unref(struct rpc_ctx *ctx)
{
	if (atomic_fetch_sub(&ctx->refs, 1) == 1)
		ctx_end(ctx);
}

/* Starts a batch on the call with tag t (taking a reference for it); false when it cannot. */
static bool start_batch(struct rpc_ctx *ctx, grpc_op *ops, size_t n, struct rpc_tag *t)
{
	atomic_fetch_add(&ctx->refs, 1);
	grpc_call_error err = grpc_call_start_batch(ctx->call, ops, n, t, NULL);
	if (err == GRPC_CALL_OK)
		return true;
	log_error("%s: grpc_call_start_batch failed (%d)", rpc_method(ctx), (int)err);
	ctx->failed = true;
	atomic_fetch_sub(&ctx->refs, 1); /* the caller still holds one */
	return false;
}

static void add_initial_md(struct rpc_ctx *ctx, grpc_op *ops, size_t *n)
{
	if (ctx->sent_initial_md)
		return;
	ctx->sent_initial_md = true;
	memset(&ops[*n], 0, sizeof(ops[*n]));
	ops[*n].op = GRPC_OP_SEND_INITIAL_METADATA;
	(*n)++;
}

/* Adds the status (and, for UNAVAILABLE that wrote nothing, the retry mark) to ops. */
static void add_status(struct rpc_ctx *ctx, int code, grpc_op *ops, size_t *n)
{
	if (code == RPC_UNIMPLEMENTED && ctx->message == NULL && ctx->method)
		rpc_fail(ctx, code, "%s is not implemented yet", ctx->method->path);
	const char *text =
	        ctx->message ? ctx->message : (code == RPC_OK ? "" : rpc_code_name(code));
	ctx->details = grpc_slice_from_copied_string(text);
	ctx->code = code;
	grpc_op *op = &ops[(*n)++];
	memset(op, 0, sizeof(*op));
	op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op->data.send_status_from_server.status = (grpc_status_code)code;
	op->data.send_status_from_server.status_details = &ctx->details;
	if (ctx->retryable && code == RPC_UNAVAILABLE) {
		ctx->retry_md.key = grpc_slice_from_static_string(RPC_RETRYABLE_KEY);
		ctx->retry_md.value = grpc_slice_from_static_string("true");
		op->data.send_status_from_server.trailing_metadata_count = 1;
		op->data.send_status_from_server.trailing_metadata = &ctx->retry_md;
	}
}

/* A unary call's answer: initial metadata, the response when code is OK, the status and the
 * close, in one batch. Consumes the caller's reference. */
static void answer_unary(struct rpc_ctx *ctx, int code)
{
	grpc_op ops[4];
	size_t n = 0;
	if (code == RPC_OK && ctx->oom)
		code = rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (ctx->local_done) { /* no transport: the caller's callback takes the answer */
		ctx->code = code;
		ctx->local_done(ctx->local_arg, code,
		                ctx->message ? ctx->message
		                             : (code == RPC_OK ? "" : rpc_code_name(code)),
		                code == RPC_OK ? ctx->resp : NULL);
		ctx_unref(ctx);
		return;
	}
	add_initial_md(ctx, ops, &n);
	if (code == RPC_OK && ctx->resp != NULL) {
		ctx->answer_bb = pack_message(ctx->resp);
		if (ctx->answer_bb == NULL) {
			code = RPC_RESOURCE_EXHAUSTED;
			ctx->message = "out of memory";
		} else {
			memset(&ops[n], 0, sizeof(ops[n]));
			ops[n].op = GRPC_OP_SEND_MESSAGE;
			ops[n].data.send_message.send_message = ctx->answer_bb;
			n++;
		}
	}
	add_status(ctx, code, ops, &n);
	memset(&ops[n], 0, sizeof(ops[n]));
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n].data.recv_close_on_server.cancelled = &ctx->cancelled;
	n++;
	if (ctx->srv->opts.send_timeout_ms > 0)
		atomic_store(&ctx->send_deadline, clock_mono_ms() + ctx->srv->opts.send_timeout_ms);
	if (!start_batch(ctx, ops, n, &ctx->t_finish))
		ctx->code = RPC_CANCELLED;
	ctx_unref(ctx);
}

void rpc_complete(struct rpc_ctx *ctx, int code)
{
	if (ctx->srv == NULL) { /* a detached context: whoever drives it waits for this */
		ctx->code = code;
		atomic_store(&ctx->refs, -1);
		return;
	}
	answer_unary(ctx, code);
}

/* The answer batch of a unary call is done: what the client saw. */
static void on_finish_unary(struct rpc_ctx *ctx, bool success)
{
	if (!success || ctx->cancelled)
		ctx->code = RPC_CANCELLED;
	ctx_unref(ctx);
}

/* A new unary call: unpack and run the entry. */
static void begin_unary(struct rpc_ctx *ctx)
{
	struct rpc_server *srv = ctx->srv;
	const coffer_method_desc *m = ctx->method;
	int code;
	const char *bad = NULL;
	if (ctx->payload == NULL) {
		code = rpc_fail(ctx, RPC_INVALID_ARGUMENT, "the request carries no message");
	} else if ((ctx->req = unpack_message(m->input, ctx->payload, &bad)) == NULL) {
		code = bad ? rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                      "field %s is not valid UTF-8 or holds a NUL byte", bad)
		           : rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                      "the request is not a valid %s message", m->input->name);
	} else if ((ctx->resp = rpc_alloc(ctx, m->output->sizeof_message)) == NULL) {
		code = rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		grpc_byte_buffer_destroy(ctx->payload);
		ctx->payload = NULL;
		protobuf_c_message_init(m->output, ctx->resp);
		code = srv->opts.unary(srv->opts.app, ctx, m, ctx->handlers, ctx->req, ctx->resp);
		if (code == RPC_PENDING)
			return; /* the application holds the call; it answers with rpc_complete */
	}
	answer_unary(ctx, code);
}

/* ---- streams ---- */

struct rpc_ctx *rpc_stream_ctx(struct rpc_stream *st)
{
	return st->ctx;
}

/* With ctx->mu held: asks for the next request message. */
static void post_read(struct rpc_ctx *ctx)
{
	struct rpc_stream *st = &ctx->stream;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &st->recv_bb;
	st->recv_bb = NULL;
	if (ctx->srv->opts.stream_idle_ms > 0)
		atomic_store(&ctx->read_deadline, clock_mono_ms() + ctx->srv->opts.stream_idle_ms);
	st->read_out = start_batch(ctx, &op, 1, &ctx->t_read);
}

/* With ctx->mu held: sends the next queued message, or the status once none is left. */
static void pump(struct rpc_ctx *ctx)
{
	struct rpc_stream *st = &ctx->stream;
	if (st->sending || st->finish_started || ctx->failed)
		return;
	grpc_op ops[2];
	size_t n = 0;
	if (st->q_head) {
		struct out_msg *m = st->q_head;
		st->q_head = m->next;
		if (st->q_head == NULL)
			st->q_tail = NULL;
		st->q_len--;
		st->send_bb = m->bb;
		free(m);
		add_initial_md(ctx, ops, &n);
		memset(&ops[n], 0, sizeof(ops[n]));
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = st->send_bb;
		n++;
		st->sending = true;
		if (ctx->srv->opts.send_timeout_ms > 0)
			atomic_store(&ctx->send_deadline,
			             clock_mono_ms() + ctx->srv->opts.send_timeout_ms);
		if (!start_batch(ctx, ops, n, &ctx->t_send)) {
			st->sending = false;
			grpc_byte_buffer_destroy(st->send_bb);
			st->send_bb = NULL;
		}
		return;
	}
	if (!st->finish_asked)
		return;
	st->finish_started = true;
	add_initial_md(ctx, ops, &n);
	add_status(ctx, st->finish_code, ops, &n);
	start_batch(ctx, ops, n, &ctx->t_finish);
}

void rpc_stream_start(struct rpc_stream *st, const struct rpc_stream_handlers *h, void *arg,
                      bool read)
{
	struct rpc_ctx *ctx = st->ctx;
	pthread_mutex_lock(&ctx->mu);
	st->h = h;
	st->arg = arg;
	st->reading = read;
	if (read && !ctx->failed && !st->read_out)
		post_read(ctx);
	/* The call ended before the application took it over: it hears so now. */
	bool over = st->done && !st->done_told;
	st->done_told = st->done_told || over;
	pthread_mutex_unlock(&ctx->mu);
	if (over && h->on_done)
		h->on_done(st, ctx->code, arg);
}

int rpc_stream_send(struct rpc_stream *st, const ProtobufCMessage *msg, size_t max_queued)
{
	struct rpc_ctx *ctx = st->ctx;
	struct out_msg *m = calloc(1, sizeof(*m));
	if (m == NULL || (m->bb = pack_message(msg)) == NULL) {
		free(m);
		return -1;
	}
	pthread_mutex_lock(&ctx->mu);
	if (ctx->failed || st->finish_asked || st->done || st->q_len >= max_queued) {
		pthread_mutex_unlock(&ctx->mu);
		grpc_byte_buffer_destroy(m->bb);
		free(m);
		return -1;
	}
	if (st->q_tail)
		st->q_tail->next = m;
	else
		st->q_head = m;
	st->q_tail = m;
	st->q_len++;
	pump(ctx);
	pthread_mutex_unlock(&ctx->mu);
	return 0;
}

void rpc_stream_finish(struct rpc_stream *st, int code)
{
	struct rpc_ctx *ctx = st->ctx;
	pthread_mutex_lock(&ctx->mu);
	if (!st->finish_asked) {
		st->finish_asked = true;
		st->finish_code = code;
		pump(ctx);
	}
	pthread_mutex_unlock(&ctx->mu);
}

void rpc_stream_fail(struct rpc_stream *st, int code, const char *fmt, ...)
{
	struct rpc_ctx *ctx = st->ctx;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&ctx->mu);
	if (!st->finish_asked) {
		ctx->message = rpc_strdup(ctx, buf);
		st->finish_asked = true;
		st->finish_code = code;
		pump(ctx);
	}
	pthread_mutex_unlock(&ctx->mu);
}

void rpc_stream_release(struct rpc_stream *st)
{
	struct rpc_ctx *ctx = st->ctx;
	pthread_mutex_lock(&ctx->mu);
	bool open = !st->done && !st->finish_asked;
	st->released = true;
	pthread_mutex_unlock(&ctx->mu);
	if (open)
		grpc_call_cancel_with_status(ctx->call, GRPC_STATUS_CANCELLED,
		                             "the server gave up the stream", NULL);
	ctx_unref(ctx);
}

/* A read completed: hand the message to the application, then ask for the next one. */
static void on_read(struct rpc_ctx *ctx, bool success)
{
	struct rpc_stream *st = &ctx->stream;
	atomic_store(&ctx->read_deadline, 0);
	grpc_byte_buffer *bb = st->recv_bb;
	st->recv_bb = NULL;
	pthread_mutex_lock(&ctx->mu);
	st->read_out = false;
	bool deliver = success && st->h && st->h->on_read && !st->finish_asked && !st->done;
	pthread_mutex_unlock(&ctx->mu);
	if (deliver) {
		ProtobufCMessage *msg = NULL;
		const char *bad = NULL;
		if (bb == NULL) {
			st->half_closed = true;
			st->h->on_read(&ctx->stream, NULL, st->arg);
		} else if ((msg = unpack_message(ctx->method->input, bb, &bad)) == NULL) {
			if (bad)
				rpc_fail(ctx, RPC_INVALID_ARGUMENT,
				         "field %s is not valid UTF-8 or holds a NUL byte", bad);
			else
				rpc_fail(ctx, RPC_INVALID_ARGUMENT, "the request is not a valid %s",
				         ctx->method->input->name);
			rpc_stream_finish(st, RPC_INVALID_ARGUMENT);
		} else {
			st->h->on_read(&ctx->stream, msg, st->arg);
		}
	}
	if (bb)
		grpc_byte_buffer_destroy(bb);
	pthread_mutex_lock(&ctx->mu);
	if (success && bb != NULL && st->reading && !st->finish_asked && !ctx->failed &&
	    !st->read_out)
		post_read(ctx);
	pthread_mutex_unlock(&ctx->mu);
	ctx_unref(ctx);
}

static void on_send(struct rpc_ctx *ctx, bool success)
{
	struct rpc_stream *st = &ctx->stream;
	atomic_store(&ctx->send_deadline, 0);
	pthread_mutex_lock(&ctx->mu);
	grpc_byte_buffer_destroy(st->send_bb);
	st->send_bb = NULL;
	st->sending = false;
	if (!success)
		ctx->failed = true;
	else
		pump(ctx);
	pthread_mutex_unlock(&ctx->mu);
	ctx_unref(ctx);
}

/* The call is over (the client cancelled, or our status went out and it closed). */
static void on_close(struct rpc_ctx *ctx, bool success)
{
	struct rpc_stream *st = &ctx->stream;
	pthread_mutex_lock(&ctx->mu);
	bool cancelled = !success || ctx->cancelled || !st->finish_started;
	ctx->failed = ctx->failed || cancelled;
	if (cancelled)
		ctx->code = RPC_CANCELLED;
	bool call_done = st->h && st->h->on_done && !st->done_told;
	st->done = true;
	st->done_told = st->done_told || call_done;
	const struct rpc_stream_handlers *h = st->h;
	void *arg = st->arg;
	pthread_mutex_unlock(&ctx->mu);
	if (call_done)
		h->on_done(st, ctx->code, arg);
	ctx_unref(ctx);
}

/* A new streaming call: the close batch first, then the entry. */
static void begin_stream(struct rpc_ctx *ctx)
{
	struct rpc_server *srv = ctx->srv;
	ctx->is_stream = true;
	ctx->stream.ctx = ctx;
	pthread_mutex_init(&ctx->mu, NULL);
	atomic_fetch_add(&srv->streams, 1);
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &ctx->cancelled;
	if (!start_batch(ctx, &op, 1, &ctx->t_close)) {
		ctx->code = RPC_CANCELLED;
		ctx_unref(ctx);
		return;
	}
	int code;
	const char *bad = NULL;
	if (atomic_load(&srv->streams) > srv->max_streams)
		code = rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED,
		                "too many streams are open on this replica; try again later");
	else if (!ctx->method->client_streaming && ctx->payload == NULL)
		code = rpc_fail(ctx, RPC_INVALID_ARGUMENT, "the request carries no message");
	else if (!ctx->method->client_streaming &&
	         (ctx->req = unpack_message(ctx->method->input, ctx->payload, &bad)) == NULL)
		code = bad ? rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                      "field %s is not valid UTF-8 or holds a NUL byte", bad)
		           : rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                      "the request is not a valid %s message",
		                      ctx->method->input->name);
	else
		code = srv->opts.stream(srv->opts.app, ctx, ctx->method, ctx->handlers, ctx->req,
		                        &ctx->stream);
	if (code == RPC_PENDING)
		return; /* the application holds the stream until rpc_stream_release */
	rpc_stream_finish(&ctx->stream, code);
	ctx_unref(ctx);
}

/* ---- slots and the event loop ---- */

static bool post_slot(struct rpc_slot *slot)
{
	struct rpc_server *srv = slot->srv;
	grpc_call_error err;
	slot->call = NULL;
	slot->payload = NULL;
	grpc_metadata_array_init(&slot->md);
	if (slot->method == NULL) {
		grpc_call_details_init(&slot->details);
		err = grpc_server_request_call(srv->server, &slot->call, &slot->details, &slot->md,
		                               srv->cq, srv->cq, &slot->tag);
	} else {
		/* One request message (unary, server streaming) comes with the call. */
		bool one_request = !slot->method->client_streaming;
		err = grpc_server_request_registered_call(
		        srv->server, slot->registered, &slot->call, &slot->deadline, &slot->md,
		        one_request ? &slot->payload : NULL, srv->cq, srv->cq, &slot->tag);
	}
	if (err != GRPC_CALL_OK) {
		log_error("cannot post a request slot (%d)", (int)err);
		grpc_metadata_array_destroy(&slot->md);
		if (slot->method == NULL)
			grpc_call_details_destroy(&slot->details);
		return false;
	}
	slot->posted = true;
	return true;
}

/* Whether the calls in flight, a new one included, are more than max_calls. Streams are bounded by
 * max_streams instead (begin_stream): a fleet's watches do not take the room of unary calls. */
static bool too_many_calls(struct rpc_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	int calls = srv->n_calls - atomic_load(&srv->streams);
	pthread_mutex_unlock(&srv->mu);
	return calls > srv->max_calls;
}

/* A slot fired: the call moves into a context of its own and the slot is posted again. */
static void on_slot(struct rpc_server *srv, struct rpc_slot *slot, bool success)
{
	slot->posted = false;
	if (!success) { /* shutting down: this request will never be filled */
		grpc_metadata_array_destroy(&slot->md);
		if (slot->method == NULL)
			grpc_call_details_destroy(&slot->details);
		return;
	}
	struct rpc_ctx *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		grpc_call_cancel_with_status(slot->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		                             "out of memory", NULL);
		grpc_call_unref(slot->call);
		if (slot->payload)
			grpc_byte_buffer_destroy(slot->payload);
		grpc_metadata_array_destroy(&slot->md);
		if (slot->method == NULL)
			grpc_call_details_destroy(&slot->details);
	} else {
		clock_gettime(CLOCK_MONOTONIC, &ctx->t0);
		ctx->srv = srv;
		ctx->method = slot->method;
		ctx->handlers = slot->handlers;
		ctx->call = slot->call;
		ctx->md = slot->md;
		ctx->payload = slot->payload;
		if (slot->method) {
			ctx->deadline = slot->deadline;
		} else {
			ctx->deadline = slot->details.deadline;
			ctx->unknown_path = grpc_slice_to_c_string(slot->details.method);
			grpc_call_details_destroy(&slot->details);
		}
		ctx->t_finish = (struct rpc_tag){TAG_FINISH, ctx};
		ctx->t_read = (struct rpc_tag){TAG_READ, ctx};
		ctx->t_send = (struct rpc_tag){TAG_SEND, ctx};
		ctx->t_close = (struct rpc_tag){TAG_CLOSE, ctx};
		atomic_init(&ctx->refs, 1);
		ctx->peer = grpc_call_get_peer(ctx->call);
	}
	/* The slot takes the next call while this one runs. */
	if (!atomic_load(&srv->shutting_down))
		post_slot(slot);
	if (ctx == NULL)
		return;
	live_add(ctx);
	if (ctx->method == NULL) {
		answer_unary(ctx, rpc_fail(ctx, RPC_UNIMPLEMENTED, "unknown method %s",
		                           ctx->unknown_path));
	} else if (!ctx->method->invoke_stream && too_many_calls(srv)) {
		answer_unary(ctx, rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED,
		                           "too many calls are in flight on this replica; try "
		                           "again later"));
	} else if (ctx->method->invoke_stream) {
		begin_stream(ctx);
	} else {
		begin_unary(ctx);
	}
}

static void *worker_main(void *arg)
{
	struct rpc_server *srv = arg;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(
		        srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		if (ev.tag == &srv->shutdown_tag) {
			pthread_mutex_lock(&srv->mu);
			srv->shutdown_done = true;
			pthread_cond_broadcast(&srv->cv);
			pthread_mutex_unlock(&srv->mu);
			continue;
		}
		struct rpc_tag *t = ev.tag;
		bool ok = ev.success != 0;
		switch (t->kind) {
		case TAG_SLOT:
			on_slot(srv, (struct rpc_slot *)t, ok);
			break;
		case TAG_FINISH:
			if (t->ctx->is_stream) {
				pthread_mutex_lock(&t->ctx->mu);
				t->ctx->failed = t->ctx->failed || !ok;
				pthread_mutex_unlock(&t->ctx->mu);
				ctx_unref(t->ctx);
			} else {
				on_finish_unary(t->ctx, ok);
			}
			break;
		case TAG_READ:
			on_read(t->ctx, ok);
			break;
		case TAG_SEND:
			on_send(t->ctx, ok);
			break;
		case TAG_CLOSE:
			on_close(t->ctx, ok);
			break;
		}
	}
	return NULL;
}

/* Cancels calls whose client has kept a read or a send waiting past its deadline. */
static void *reaper_main(void *arg)
{
	struct rpc_server *srv = arg;
	pthread_mutex_lock(&srv->mu);
	while (!srv->stopping) {
		struct timespec until = clock_realtime_after_ms(REAPER_PERIOD_MS);
		pthread_cond_timedwait(&srv->reaper_cv, &srv->mu, &until);
		int64_t now = clock_mono_ms();
		for (struct rpc_ctx *c = srv->live; c; c = c->next) {
			long long r = atomic_load(&c->read_deadline);
			long long w = atomic_load(&c->send_deadline);
			if (c->cancel_sent || !((r && now > r) || (w && now > w)))
				continue;
			c->cancel_sent = true;
			log_warn("%s: the client kept the call waiting %s: cancelled",
			         rpc_method(c),
			         r && now > r ? "without sending" : "without taking its answer");
			grpc_call_cancel_with_status(c->call, GRPC_STATUS_CANCELLED,
			                             "the client kept the call waiting too long",
			                             NULL);
		}
	}
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

/* ---- calls from another transport ---- */

int rpc_local_call(struct rpc_server *srv, const char *path, const uint8_t *packed, size_t len,
                   const char *const *md, size_t n_md, const char *peer, int64_t timeout_ms,
                   rpc_local_done_fn done, void *arg)
{
	const struct rpc_slot *slot = NULL;
	for (size_t i = 0; i < srv->n_slots && slot == NULL; i++)
		if (srv->slots[i].method && strcmp(srv->slots[i].method->path, path) == 0)
			slot = &srv->slots[i];
	if (slot == NULL || slot->method->invoke_stream)
		return RPC_NOT_FOUND;
	if (atomic_load(&srv->shutting_down))
		return RPC_UNAVAILABLE;
	struct rpc_ctx *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return RPC_RESOURCE_EXHAUSTED;
	ctx->local_md = calloc(2 * n_md + 1, sizeof(char *));
	grpc_slice body = grpc_slice_from_copied_buffer((const char *)packed, len);
	ctx->payload = grpc_raw_byte_buffer_create(&body, 1);
	grpc_slice_unref(body);
	ctx->peer = gpr_strdup(peer);
	bool ok = ctx->local_md && ctx->payload && ctx->peer;
	for (size_t i = 0; ok && i < n_md; i++) {
		ctx->local_md[2 * i] = strdup(md[2 * i]);
		ctx->local_md[2 * i + 1] = strdup(md[2 * i + 1]);
		ctx->n_local_md = i + 1;
		ok = ctx->local_md[2 * i] && ctx->local_md[2 * i + 1];
	}
	clock_gettime(CLOCK_MONOTONIC, &ctx->t0);
	ctx->srv = srv;
	ctx->method = slot->method;
	ctx->handlers = slot->handlers;
	ctx->local_done = done;
	ctx->local_arg = arg;
	ctx->local_deadline_ms = timeout_ms > 0 ? clock_mono_ms() + timeout_ms : 0;
	atomic_init(&ctx->refs, 1);
	live_add(ctx);
	if (!ok) {
		answer_unary(ctx, rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory"));
		return 0;
	}
	if (too_many_calls(srv))
		answer_unary(ctx, rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED,
		                           "too many calls are in flight on this replica; try "
		                           "again later"));
	else
		begin_unary(ctx);
	return 0;
}

/* ---- server life ---- */

int rpc_server_start(const struct rpc_server_opts *opts, const struct rpc_binding *bindings,
                     size_t n_bindings, struct rpc_server **out, struct cof_err *e)
{
	*out = NULL;
	struct rpc_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	srv->opts = *opts;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	pthread_cond_init(&srv->reaper_cv, NULL);
	srv->max_calls = opts->max_calls > 0 ? opts->max_calls : DEFAULT_MAX_CALLS;
	srv->max_streams = opts->max_streams > 0 ? opts->max_streams : DEFAULT_MAX_STREAMS;

	grpc_arg args[9];
	memset(args, 0, sizeof(args));
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = opts->max_message_bytes;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
	args[1].value.integer = -1;
	/* Two servers on one port would share its traffic: a busy port must fail loudly. */
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = GRPC_ARG_ALLOW_REUSEPORT;
	args[2].value.integer = 0;
	/* Connections: a bound on streams each, pings to find dead peers, idle ones closed. */
	const struct {
		const char *key;
		int value;
	} conn[] = {
	        {GRPC_ARG_MAX_CONCURRENT_STREAMS,
	         opts->max_streams_per_connection > 0 ? opts->max_streams_per_connection : 100},
	        {GRPC_ARG_KEEPALIVE_TIME_MS, 60000},
	        {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000},
	        {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1},
	        {GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000},
	        {GRPC_ARG_MAX_CONNECTION_IDLE_MS, 300000},
	};
	for (size_t i = 0; i < sizeof(conn) / sizeof(conn[0]); i++) {
		args[3 + i].type = GRPC_ARG_INTEGER;
		args[3 + i].key = (char *)conn[i].key;
		args[3 + i].value.integer = conn[i].value;
	}
	grpc_channel_args channel_args = {3 + sizeof(conn) / sizeof(conn[0]), args};
	srv->server = grpc_server_create(&channel_args, NULL);
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(srv->server, srv->cq, NULL);

	size_t n_methods = 0;
	for (size_t b = 0; b < n_bindings; b++)
		n_methods += bindings[b].service->n_methods;
	size_t per = (size_t)(opts->slots_per_method > 0 ? opts->slots_per_method : 1);
	srv->n_slots = n_methods * per + per;
	srv->slots = calloc(srv->n_slots, sizeof(*srv->slots));
	srv->workers = calloc((size_t)(opts->workers > 0 ? opts->workers : 1), sizeof(pthread_t));
	if (srv->slots == NULL || srv->workers == NULL) {
		cof_err_set(e, COF_EINTERNAL, "out of memory");
		goto out_free;
	}
	size_t k = 0;
	for (size_t b = 0; b < n_bindings; b++) {
		const coffer_service_desc *svc = bindings[b].service;
		for (size_t m = 0; m < svc->n_methods; m++) {
			const coffer_method_desc *md = &svc->methods[m];
			bool one_request = !md->client_streaming;
			void *reg = grpc_server_register_method(
			        srv->server, md->path, NULL,
			        one_request ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
			                    : GRPC_SRM_PAYLOAD_NONE,
			        0);
			if (reg == NULL) {
				cof_err_set(e, COF_EINTERNAL, "cannot register method %s",
				            md->path);
				goto out_free;
			}
			for (size_t i = 0; i < per; i++, k++) {
				srv->slots[k].method = md;
				srv->slots[k].handlers = bindings[b].handlers;
				srv->slots[k].registered = reg;
			}
		}
	}
	for (size_t i = 0; i < srv->n_slots; i++) {
		srv->slots[i].srv = srv;
		srv->slots[i].tag.kind = TAG_SLOT;
	}

	grpc_server_credentials *creds;
	if (opts->tls_cert_pem) {
		grpc_ssl_pem_key_cert_pair pair = {opts->tls_key_pem, opts->tls_cert_pem};
		creds = grpc_ssl_server_credentials_create_ex(
		        opts->tls_client_ca_pem, &pair, 1,
		        opts->tls_client_ca_pem
		                ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
		                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
		        NULL);
	} else {
		creds = grpc_insecure_server_credentials_create();
	}
	srv->port = grpc_server_add_http2_port(srv->server, opts->listen, creds);
	grpc_server_credentials_release(creds);
	if (srv->port <= 0) {
		cof_err_set(e, COF_EUNAVAIL, "cannot listen on %s", opts->listen);
		goto out_free;
	}
	grpc_server_start(srv->server);
	for (size_t i = 0; i < srv->n_slots; i++)
		post_slot(&srv->slots[i]);
	int workers = opts->workers > 0 ? opts->workers : 1;
	for (int i = 0; i < workers; i++) {
		if (pthread_create(&srv->workers[i], NULL, worker_main, srv) != 0) {
			cof_err_set(e, COF_EINTERNAL, "cannot start worker threads");
			rpc_server_free(srv);
			return COF_EINTERNAL;
		}
		srv->n_started++;
	}
	if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0) {
		cof_err_set(e, COF_EINTERNAL, "cannot start the reaper thread");
		rpc_server_free(srv);
		return COF_EINTERNAL;
	}
	srv->reaper_started = true;
	*out = srv;
	return 0;

out_free:
	rpc_server_free(srv);
	return e ? e->code : COF_EINTERNAL;
}

void rpc_global_init(void)
{
	grpc_init();
}

void rpc_global_shutdown(void)
{
	grpc_shutdown();
}

int rpc_server_port(const struct rpc_server *srv)
{
	return srv->port;
}

/* Waits for the shutdown tag, until abs (NULL: no bound); whether it came. */
static bool wait_shutdown(struct rpc_server *srv, const struct timespec *abs)
{
	pthread_mutex_lock(&srv->mu);
	while (!srv->shutdown_done) {
		if (abs == NULL)
			pthread_cond_wait(&srv->cv, &srv->mu);
		else if (pthread_cond_timedwait(&srv->cv, &srv->mu, abs) != 0)
			break;
	}
	bool done = srv->shutdown_done;
	pthread_mutex_unlock(&srv->mu);
	return done;
}

void rpc_server_shutdown(struct rpc_server *srv, int grace_seconds)
{
	if (srv == NULL || srv->stopped || srv->server == NULL)
		return;
	srv->stopped = true;
	atomic_store(&srv->shutting_down, true);
	grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
	/* Calls that wait for something (a revision, changes to watch) are answered now, so that
	 * their clients move to another replica instead of waiting out the grace period. */
	if (srv->n_started > 0 && srv->opts.on_drain)
		srv->opts.on_drain(srv->opts.app);
	if (srv->n_started > 0) {
		struct timespec abs;
		clock_gettime(CLOCK_REALTIME, &abs);
		abs.tv_sec += grace_seconds;
		if (!wait_shutdown(srv, &abs)) {
			log_warn("grace period of %d s over: cancelling the calls still running",
			         grace_seconds);
			grpc_server_cancel_all_calls(srv->server);
			if (srv->opts.on_drain)
				srv->opts.on_drain(srv->opts.app);
			wait_shutdown(srv, NULL);
		}
		/* Calls answered but not yet closed, and streams the application still holds. */
		pthread_mutex_lock(&srv->mu);
		while (srv->n_calls > 0)
			pthread_cond_wait(&srv->cv, &srv->mu);
		pthread_mutex_unlock(&srv->mu);
	} else {
		grpc_server_cancel_all_calls(srv->server);
		for (;;) {
			grpc_event ev = grpc_completion_queue_next(
			        srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
			if (ev.type != GRPC_OP_COMPLETE || ev.tag == &srv->shutdown_tag)
				break;
			struct rpc_tag *t = ev.tag;
			if (t->kind == TAG_SLOT)
				on_slot(srv, (struct rpc_slot *)t, false);
		}
	}
	pthread_mutex_lock(&srv->mu);
	srv->stopping = true;
	pthread_cond_broadcast(&srv->reaper_cv);
	pthread_mutex_unlock(&srv->mu);
	if (srv->reaper_started)
		pthread_join(srv->reaper, NULL);
	srv->reaper_started = false;
	grpc_completion_queue_shutdown(srv->cq);
	for (int i = 0; i < srv->n_started; i++)
		pthread_join(srv->workers[i], NULL);
	if (srv->n_started == 0) {
		while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		               .type != GRPC_QUEUE_SHUTDOWN)
			;
	}
	srv->n_started = 0;
}

void rpc_server_free(struct rpc_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->server) {
		rpc_server_shutdown(srv, 0);
		grpc_server_destroy(srv->server);
	}
	if (srv->cq)
		grpc_completion_queue_destroy(srv->cq);
	free(srv->slots);
	free(srv->workers);
	pthread_cond_destroy(&srv->cv);
	pthread_cond_destroy(&srv->reaper_cv);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}
