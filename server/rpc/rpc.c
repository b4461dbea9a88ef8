/*
 * rpc.c - the gRPC core runtime (see rpc.h). The only server file that includes gRPC headers.
 */
#include "rpc.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
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

#include "coffer_shared.h"
#include "log.h"
#include "wire.h"

/* One allocation in a call's arena; the payload follows the header. */
struct arena_block {
	struct arena_block *next; /* older block */
	size_t size;              /* payload bytes */
	max_align_t payload[];    /* the memory handed out */
};

/* A pre-posted request: what gRPC fills in when a call for `method` arrives. */
struct rpc_slot {
	struct rpc_server *srv;           /* owner */
	const coffer_method_desc *method; /* NULL: the catch-all for unknown methods */
	const void *handlers;             /* typed handler table of method's service */
	void *registered;                 /* grpc_server_register_method handle */
	grpc_completion_queue *cq;        /* pluck queue bound to the call */
	grpc_call *call;                  /* the call, once notified */
	gpr_timespec deadline;            /* registered methods: the call's deadline */
	grpc_metadata_array md;           /* request metadata */
	grpc_byte_buffer *payload;        /* unary: the request message */
	grpc_call_details details;        /* catch-all: method and deadline */
	bool retired;                     /* failed at shutdown: never posted again */
};

struct rpc_ctx {
	struct rpc_slot *slot;     /* the call's slot */
	struct arena_block *arena; /* call-owned memory */
	char *message;             /* status message, arena-owned */
	const char *project;       /* for the call log */
	char *peer;                /* gpr-allocated */
	bool sent_initial_md;      /* initial metadata goes out once */
	bool failed;               /* a batch failed: the call is gone */
	bool oom;                  /* an arena allocation failed */
	bool retryable;            /* UNAVAILABLE with nothing written: say so in the trailers */
};

struct rpc_stream {
	struct rpc_ctx *ctx; /* the call */
};

struct rpc_worker {
	struct rpc_server *srv; /* owner */
	pthread_t thread;       /* the thread */
};

struct rpc_server {
	struct rpc_server_opts opts;  /* copy of the caller's options */
	grpc_server *server;          /* the core server */
	grpc_completion_queue *cq;    /* shared notification queue */
	struct rpc_slot *slots;       /* every request slot */
	size_t n_slots;               /* entries in slots */
	struct rpc_worker *workers;   /* opts.workers of them */
	int n_started;                /* workers started */
	int port;                     /* bound port */
	atomic_int active;            /* calls being handled */
	atomic_int streams;           /* streaming calls being handled */
	int max_streams;              /* at most this many at once */
	atomic_bool shutting_down;    /* no more re-posting */
	atomic_uint_fast64_t next_id; /* request ids */
	pthread_mutex_t mu;           /* guards shutdown_done */
	pthread_cond_t cv;            /* signalled on shutdown_done and active changes */
	bool shutdown_done;           /* the shutdown tag arrived */
	bool stopped;                 /* rpc_server_shutdown finished */
	int shutdown_tag;             /* its address is the tag */
};

const char *rpc_code_name(int code)
{
	return coffer_status_name(code);
}

/* ---- arena and message memory ---- */

void *rpc_alloc(struct rpc_ctx *ctx, size_t n)
{
	struct arena_block *b = calloc(1, sizeof(*b) + n);
	if (b == NULL) {
		ctx->oom = true;
		return NULL;
	}
	b->size = n;
	b->next = ctx->arena;
	ctx->arena = b;
	return b->payload;
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
		explicit_bzero(b->payload, b->size);
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

int64_t rpc_remaining_ms(const struct rpc_ctx *ctx)
{
	if (ctx->slot == NULL)
		return -1;
	gpr_timespec dl = ctx->slot->method ? ctx->slot->deadline : ctx->slot->details.deadline;
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
	return ctx->slot && ctx->slot->method ? ctx->slot->method->path : "";
}

const char *rpc_metadata(struct rpc_ctx *ctx, const char *key)
{
	if (ctx->slot == NULL)
		return NULL;
	const grpc_metadata_array *md = &ctx->slot->md;
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

struct rpc_ctx *rpc_ctx_detached(void)
{
	return calloc(1, sizeof(struct rpc_ctx));
}

const char *rpc_ctx_message(const struct rpc_ctx *ctx)
{
	return ctx->message ? ctx->message : "";
}

void rpc_ctx_detached_free(struct rpc_ctx *ctx)
{
	if (ctx == NULL)
		return;
	arena_free(ctx);
	free(ctx);
}

/* ---- batches on the call's own queue ---- */

/* Runs a batch on the call's own queue and waits for it, at most timeout_ms (-1: no bound): a
 * client that sends nothing, or takes nothing, is cancelled then, and its worker is free again.
 */
static bool run_batch(struct rpc_ctx *ctx, grpc_op *ops, size_t n, int timeout_ms)
{
	struct rpc_slot *slot = ctx->slot;
	if (ctx->failed)
		return false;
	grpc_call_error err = grpc_call_start_batch(slot->call, ops, n, ctx, NULL);
	if (err != GRPC_CALL_OK) {
		log_error("grpc_call_start_batch failed (%d)", (int)err);
		ctx->failed = true;
		return false;
	}
	gpr_timespec until = timeout_ms < 0
	                             ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
	                             : gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	                                            gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
	grpc_event ev = grpc_completion_queue_pluck(slot->cq, ctx, until, NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT) {
		log_warn("%s: the client kept the call waiting for %d ms: cancelled",
		         rpc_method(ctx), timeout_ms);
		grpc_call_cancel_with_status(slot->call, GRPC_STATUS_CANCELLED,
		                             "the client kept the call waiting too long", NULL);
		ev = grpc_completion_queue_pluck(slot->cq, ctx, gpr_inf_future(GPR_CLOCK_REALTIME),
		                                 NULL);
		ctx->failed = true;
		return false;
	}
	if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
		ctx->failed = true;
		return false;
	}
	return true;
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

int rpc_stream_read(struct rpc_stream *st, ProtobufCMessage **out)
{
	struct rpc_ctx *ctx = st->ctx;
	grpc_byte_buffer *bb = NULL;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &bb;
	*out = NULL;
	if (!run_batch(ctx, &op, 1, ctx->slot->srv->opts.stream_idle_ms))
		return -1;
	if (bb == NULL)
		return 0;
	const char *bad = NULL;
	*out = unpack_message(ctx->slot->method->input, bb, &bad);
	grpc_byte_buffer_destroy(bb);
	if (*out == NULL)
		return -2;
	return 1;
}

int rpc_stream_write(struct rpc_stream *st, const ProtobufCMessage *msg)
{
	struct rpc_ctx *ctx = st->ctx;
	grpc_op ops[2];
	size_t n = 0;
	add_initial_md(ctx, ops, &n);
	grpc_byte_buffer *bb = pack_message(msg);
	if (bb == NULL)
		return -1;
	memset(&ops[n], 0, sizeof(ops[n]));
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = bb;
	n++;
	bool ok = run_batch(ctx, ops, n, ctx->slot->srv->opts.send_timeout_ms);
	grpc_byte_buffer_destroy(bb);
	return ok ? 0 : -1;
}

bool rpc_out_of_memory(const struct rpc_ctx *ctx)
{
	return ctx->oom;
}

void rpc_mark_retryable(struct rpc_ctx *ctx)
{
	ctx->retryable = true;
}

/* Sends the response (if any) and the status, and waits for the call to close. Returns whether
 * the client cancelled the call. */
static bool finish_call(struct rpc_ctx *ctx, int code, const ProtobufCMessage *resp)
{
	grpc_op ops[4];
	size_t n = 0;
	int cancelled = 0;
	grpc_byte_buffer *bb = NULL;
	add_initial_md(ctx, ops, &n);
	if (code == RPC_OK && resp != NULL) {
		bb = pack_message(resp);
		if (bb == NULL) {
			code = RPC_INTERNAL;
			ctx->message = "out of memory";
		} else {
			memset(&ops[n], 0, sizeof(ops[n]));
			ops[n].op = GRPC_OP_SEND_MESSAGE;
			ops[n].data.send_message.send_message = bb;
			n++;
		}
	}
	if (code == RPC_UNIMPLEMENTED && ctx->message == NULL && ctx->slot->method)
		rpc_fail(ctx, code, "%s is not implemented yet", ctx->slot->method->path);
	const char *text =
	        ctx->message ? ctx->message : (code == RPC_OK ? "" : rpc_code_name(code));
	grpc_slice details = grpc_slice_from_copied_string(text);
	memset(&ops[n], 0, sizeof(ops[n]));
	grpc_metadata retry;
	memset(&retry, 0, sizeof(retry));
	retry.key = grpc_slice_from_static_string(RPC_RETRYABLE_KEY);
	retry.value = grpc_slice_from_static_string("true");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = (grpc_status_code)code;
	ops[n].data.send_status_from_server.status_details = &details;
	if (ctx->retryable && code == RPC_UNAVAILABLE) {
		ops[n].data.send_status_from_server.trailing_metadata_count = 1;
		ops[n].data.send_status_from_server.trailing_metadata = &retry;
	}
	n++;
	memset(&ops[n], 0, sizeof(ops[n]));
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n].data.recv_close_on_server.cancelled = &cancelled;
	n++;
	bool ok = run_batch(ctx, ops, n, ctx->slot->srv->opts.send_timeout_ms);
	grpc_slice_unref(details);
	if (bb)
		grpc_byte_buffer_destroy(bb);
	return !ok || cancelled;
}

static int dispatch_unary(struct rpc_ctx *ctx, ProtobufCMessage **resp_out)
{
	struct rpc_slot *slot = ctx->slot;
	struct rpc_server *srv = slot->srv;
	const coffer_method_desc *m = slot->method;
	if (slot->payload == NULL)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "the request carries no message");
	const char *bad = NULL;
	ProtobufCMessage *req = unpack_message(m->input, slot->payload, &bad);
	if (bad != NULL)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "field %s is not valid UTF-8 or holds a NUL byte", bad);
	if (req == NULL)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "the request is not a valid %s message",
		                m->input->name);
	int code;
	ProtobufCMessage *resp = rpc_alloc(ctx, m->output->sizeof_message);
	if (resp == NULL) {
		code = rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out_free_req;
	}
	protobuf_c_message_init(m->output, resp);
	code = srv->opts.unary(srv->opts.app, ctx, m, slot->handlers, req, resp);
	if (code == RPC_OK)
		*resp_out = resp;
out_free_req:
	protobuf_c_message_free_unpacked(req, &wiping_allocator);
	return code;
}

static void handle_call(struct rpc_server *srv, struct rpc_slot *slot)
{
	struct rpc_ctx ctx = {.slot = slot};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ctx.peer = grpc_call_get_peer(slot->call);
	ProtobufCMessage *resp = NULL;
	int code;
	if (slot->method == NULL) {
		char *path = grpc_slice_to_c_string(slot->details.method);
		code = rpc_fail(&ctx, RPC_UNIMPLEMENTED, "unknown method %s", path);
		gpr_free(path);
	} else if (slot->method->invoke_stream) {
		/* Streams may not take every worker: unary calls (health among them) keep some. */
		if (atomic_fetch_add(&srv->streams, 1) >= srv->max_streams) {
			code = rpc_fail(
			        &ctx, RPC_RESOURCE_EXHAUSTED,
			        "too many streams are open on this replica; try again later");
		} else {
			struct rpc_stream st = {&ctx};
			code = srv->opts.stream(srv->opts.app, &ctx, slot->method, slot->handlers,
			                        &st);
		}
		atomic_fetch_sub(&srv->streams, 1);
	} else {
		code = dispatch_unary(&ctx, &resp);
	}
	/* What the client saw: a call it cancelled (or that broke) is counted as CANCELLED. */
	if (finish_call(&ctx, code, resp))
		code = RPC_CANCELLED;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (srv->opts.on_call) {
		char *path = slot->method ? NULL : grpc_slice_to_c_string(slot->details.method);
		struct rpc_call_info info = {
		        .method = slot->method ? slot->method->path : path,
		        .project = ctx.project,
		        .peer = rpc_peer(&ctx),
		        .request_id = atomic_fetch_add(&srv->next_id, 1) + 1,
		        .code = code,
		        .duration_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		                       (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
		};
		srv->opts.on_call(&info, srv->opts.app);
		gpr_free(path);
	}
	gpr_free(ctx.peer);
	arena_free(&ctx);
}

/* ---- slots ---- */

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
		                               slot->cq, srv->cq, slot);
	} else {
		bool unary = !slot->method->client_streaming && !slot->method->server_streaming;
		err = grpc_server_request_registered_call(
		        srv->server, slot->registered, &slot->call, &slot->deadline, &slot->md,
		        unary ? &slot->payload : NULL, slot->cq, srv->cq, slot);
	}
	if (err != GRPC_CALL_OK) {
		log_error("cannot post a request slot (%d)", (int)err);
		grpc_metadata_array_destroy(&slot->md);
		slot->retired = true;
		return false;
	}
	return true;
}

static void reset_slot(struct rpc_slot *slot)
{
	if (slot->call)
		grpc_call_unref(slot->call);
	slot->call = NULL;
	if (slot->payload)
		grpc_byte_buffer_destroy(slot->payload);
	slot->payload = NULL;
	grpc_metadata_array_destroy(&slot->md);
	if (slot->method == NULL)
		grpc_call_details_destroy(&slot->details);
}

static void *worker_main(void *arg)
{
	struct rpc_worker *w = arg;
	struct rpc_server *srv = w->srv;
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
		struct rpc_slot *slot = ev.tag;
		if (!ev.success) {
			/* The server is shutting down and failed this pending request. */
			reset_slot(slot);
			slot->retired = true;
			continue;
		}
		atomic_fetch_add(&srv->active, 1);
		handle_call(srv, slot);
		reset_slot(slot);
		if (atomic_load(&srv->shutting_down) || !post_slot(slot))
			slot->retired = true;
		pthread_mutex_lock(&srv->mu);
		atomic_fetch_sub(&srv->active, 1);
		pthread_cond_broadcast(&srv->cv);
		pthread_mutex_unlock(&srv->mu);
	}
	return NULL;
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
	static const struct {
		const char *key;
		int value;
	} conn[] = {
	        {GRPC_ARG_MAX_CONCURRENT_STREAMS, 100},
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
	srv->max_streams = opts->max_streams > 0 ? opts->max_streams
	                                         : (opts->workers > 1 ? opts->workers / 2 : 1);
	srv->server = grpc_server_create(&channel_args, NULL);
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(srv->server, srv->cq, NULL);

	size_t n_methods = 0;
	for (size_t b = 0; b < n_bindings; b++)
		n_methods += bindings[b].service->n_methods;
	size_t per = (size_t)(opts->slots_per_method > 0 ? opts->slots_per_method : 1);
	srv->n_slots = n_methods * per + per;
	srv->slots = calloc(srv->n_slots, sizeof(*srv->slots));
	srv->workers = calloc((size_t)opts->workers, sizeof(*srv->workers));
	if (srv->slots == NULL || srv->workers == NULL) {
		cof_err_set(e, COF_EINTERNAL, "out of memory");
		goto out_free;
	}
	size_t k = 0;
	for (size_t b = 0; b < n_bindings; b++) {
		const coffer_service_desc *svc = bindings[b].service;
		for (size_t m = 0; m < svc->n_methods; m++) {
			const coffer_method_desc *md = &svc->methods[m];
			bool unary = !md->client_streaming && !md->server_streaming;
			void *reg = grpc_server_register_method(
			        srv->server, md->path, NULL,
			        unary ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
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
		srv->slots[i].cq = grpc_completion_queue_create_for_pluck(NULL);
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
	for (int i = 0; i < opts->workers; i++) {
		srv->workers[i].srv = srv;
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) !=
		    0) {
			cof_err_set(e, COF_EINTERNAL, "cannot start worker threads");
			rpc_server_free(srv);
			return COF_EINTERNAL;
		}
		srv->n_started++;
	}
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

static bool wait_until(struct rpc_server *srv, const struct timespec *abs)
{
	bool done;
	pthread_mutex_lock(&srv->mu);
	while (!srv->shutdown_done) {
		if (abs == NULL)
			pthread_cond_wait(&srv->cv, &srv->mu);
		else if (pthread_cond_timedwait(&srv->cv, &srv->mu, abs) != 0)
			break;
	}
	done = srv->shutdown_done;
	pthread_mutex_unlock(&srv->mu);
	return done;
}

void rpc_server_shutdown(struct rpc_server *srv, int grace_seconds)
{
	if (srv == NULL || srv->stopped)
		return;
	srv->stopped = true;
	if (srv->n_started > 0) {
		atomic_store(&srv->shutting_down, true);
		grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
		struct timespec abs;
		clock_gettime(CLOCK_REALTIME, &abs);
		abs.tv_sec += grace_seconds;
		if (!wait_until(srv, &abs)) {
			log_warn("grace period of %d s over: cancelling the calls still running",
			         grace_seconds);
			grpc_server_cancel_all_calls(srv->server);
			wait_until(srv, NULL);
		}
		pthread_mutex_lock(&srv->mu);
		while (atomic_load(&srv->active) > 0)
			pthread_cond_wait(&srv->cv, &srv->mu);
		pthread_mutex_unlock(&srv->mu);
	} else if (srv->server) {
		grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
		grpc_server_cancel_all_calls(srv->server);
		grpc_event ev;
		do {
			ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
			                                NULL);
			if (ev.type == GRPC_OP_COMPLETE && ev.tag != &srv->shutdown_tag)
				reset_slot(ev.tag);
		} while (!(ev.type == GRPC_OP_COMPLETE && ev.tag == &srv->shutdown_tag));
	}
	grpc_completion_queue_shutdown(srv->cq);
	for (int i = 0; i < srv->n_started; i++)
		pthread_join(srv->workers[i].thread, NULL);
	if (srv->n_started == 0) {
		while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		               .type != GRPC_QUEUE_SHUTDOWN)
			;
	}
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
	for (size_t i = 0; srv->slots && i < srv->n_slots; i++) {
		grpc_completion_queue *cq = srv->slots[i].cq;
		if (cq == NULL)
			continue;
		grpc_completion_queue_shutdown(cq);
		while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME),
		                                   NULL)
		               .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(cq);
	}
	free(srv->slots);
	free(srv->workers);
	pthread_cond_destroy(&srv->cv);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}
