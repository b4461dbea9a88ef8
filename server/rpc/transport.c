/*
 * transport.c - the gRPC core transport (see internal.h): a call that arrived in a request slot
 * (loop.c) is adopted by a struct rpc_ctx, and its answers, messages, reads and close are batches
 * on the shared queue. A unary answer is one batch (initial metadata, message, status, close); a
 * stream posts its close batch first (it completes when the call ends, whoever ends it), then one
 * batch at a time of each kind. Every batch holds a reference on the call.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
#include <grpc/support/time.h>

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "internal.h"
#include "log.h"

/* Starts a batch on the call with tag t (taking a reference for it); false when it cannot. */
static bool start_batch(struct rpc_ctx *ctx, grpc_op *ops, size_t n, struct rpc_tag *t)
{
	rpc__ctx_ref(ctx);
	grpc_call_error err = grpc_call_start_batch(ctx->t.grpc.call, ops, n, t, NULL);
	if (err == GRPC_CALL_OK)
		return true;
	log_error("%s: grpc_call_start_batch failed (%d)", rpc_method(ctx), (int)err);
	ctx->failed = true;
	atomic_fetch_sub(&ctx->refs, 1); /* the caller still holds one */
	return false;
}

/* The next op of a batch, zeroed, of kind op. */
static grpc_op *add_op(grpc_op *ops, size_t *n, grpc_op_type op)
{
	grpc_op *o = &ops[(*n)++];
	memset(o, 0, sizeof(*o));
	o->op = op;
	return o;
}

/* Initial metadata goes out once per call, with whatever goes first. */
static void add_initial_md(struct rpc_ctx *ctx, grpc_op *ops, size_t *n)
{
	if (ctx->t.grpc.sent_initial_md)
		return;
	ctx->t.grpc.sent_initial_md = true;
	add_op(ops, n, GRPC_OP_SEND_INITIAL_METADATA);
}

/* Adds the status (and, for UNAVAILABLE that wrote nothing, the retry mark) to ops. */
static void add_status(struct rpc_ctx *ctx, int code, grpc_op *ops, size_t *n)
{
	struct rpc_grpc_call *g = &ctx->t.grpc;
	g->details = grpc_slice_from_copied_string(rpc__ctx_message(ctx, code));
	ctx->code = code;
	grpc_op *op = add_op(ops, n, GRPC_OP_SEND_STATUS_FROM_SERVER);
	op->data.send_status_from_server.status = (grpc_status_code)code;
	op->data.send_status_from_server.status_details = &g->details;
	if (ctx->retryable && code == RPC_UNAVAILABLE) {
		g->retry_md.key = grpc_slice_from_static_string(RPC_RETRYABLE_KEY);
		g->retry_md.value = grpc_slice_from_static_string("true");
		op->data.send_status_from_server.trailing_metadata_count = 1;
		op->data.send_status_from_server.trailing_metadata = &g->retry_md;
	}
}

/* A byte buffer over packed bytes, which it wipes and frees when gRPC is done with them. */
static grpc_byte_buffer *packed_buffer(uint8_t *packed, size_t len)
{
	grpc_slice slice = grpc_slice_new_with_len(packed, len, rpc__packed_free);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

/* Calls fn with the bytes of bb (wiped afterwards: a request may hold values); false, without
 * calling it, when bb cannot be read (a compression gRPC cannot undo). */
static bool with_bytes(grpc_byte_buffer *bb, void (*fn)(const uint8_t *, size_t, void *), void *arg)
{
	grpc_byte_buffer_reader reader;
	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return false;
	grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	fn(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), arg);
	explicit_bzero(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
	grpc_slice_unref(all);
	return true;
}

/* ---- the transport's functions ---- */

struct unpack_args {
	const ProtobufCMessageDescriptor *desc; /* what to unpack as */
	ProtobufCMessage *msg;                  /* the result */
	const char *bad;                        /* or the field that is not UTF-8 or holds a NUL */
};

static void unpack_bytes(const uint8_t *buf, size_t len, void *arg)
{
	struct unpack_args *a = arg;
	a->msg = rpc__unpack(a->desc, buf, len, &a->bad);
}

static int grpc_take_request(struct rpc_ctx *ctx, const ProtobufCMessageDescriptor *desc,
                             ProtobufCMessage **out, const char **bad)
{
	struct rpc_grpc_call *g = &ctx->t.grpc;
	if (g->payload == NULL)
		return -1;
	struct unpack_args a = {desc, NULL, NULL};
	with_bytes(g->payload, unpack_bytes, &a);
	grpc_byte_buffer_destroy(g->payload);
	g->payload = NULL;
	*out = a.msg;
	*bad = a.bad;
	return a.msg ? 0 : -2;
}

static const char *grpc_metadata_value(struct rpc_ctx *ctx, const char *key)
{
	const grpc_metadata_array *md = &ctx->t.grpc.md;
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

/* Unary: initial metadata, the response, the status and the close in one batch. Streams: the
 * status after the last message (the close batch is out already). */
static void grpc_send_status(struct rpc_ctx *ctx, int code, const ProtobufCMessage *resp)
{
	struct rpc_grpc_call *g = &ctx->t.grpc;
	grpc_op ops[4];
	size_t n = 0;
	add_initial_md(ctx, ops, &n);
	if (ctx->is_stream) {
		add_status(ctx, code, ops, &n);
		start_batch(ctx, ops, n, &g->t_finish);
		return;
	}
	uint8_t *packed = resp != NULL ? ctx->packed : NULL;
	size_t len = ctx->packed_len;
	if (packed != NULL)
		ctx->packed = NULL; /* the byte buffer owns it now */
	if (resp != NULL && (packed != NULL || rpc__pack(resp, &packed, &len))) {
		g->answer_bb = packed_buffer(packed, len);
		add_op(ops, &n, GRPC_OP_SEND_MESSAGE)->data.send_message.send_message =
		        g->answer_bb;
	} else if (resp != NULL) {
		code = rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	add_status(ctx, code, ops, &n);
	add_op(ops, &n, GRPC_OP_RECV_CLOSE_ON_SERVER)->data.recv_close_on_server.cancelled =
	        &g->cancelled;
	if (ctx->srv->opts.send_timeout_ms > 0)
		atomic_store(&ctx->send_deadline, clock_mono_ms() + ctx->srv->opts.send_timeout_ms);
	if (!start_batch(ctx, ops, n, &g->t_finish))
		ctx->code = RPC_CANCELLED;
}

static bool grpc_open_stream(struct rpc_ctx *ctx)
{
	grpc_op ops[1];
	size_t n = 0;
	add_op(ops, &n, GRPC_OP_RECV_CLOSE_ON_SERVER)->data.recv_close_on_server.cancelled =
	        &ctx->t.grpc.cancelled;
	return start_batch(ctx, ops, n, &ctx->t.grpc.t_close);
}

static bool grpc_send_message(struct rpc_ctx *ctx, uint8_t *packed, size_t len)
{
	struct rpc_grpc_call *g = &ctx->t.grpc;
	grpc_op ops[2];
	size_t n = 0;
	g->send_bb = packed_buffer(packed, len);
	add_initial_md(ctx, ops, &n);
	add_op(ops, &n, GRPC_OP_SEND_MESSAGE)->data.send_message.send_message = g->send_bb;
	if (start_batch(ctx, ops, n, &g->t_send))
		return true;
	grpc_byte_buffer_destroy(g->send_bb);
	g->send_bb = NULL;
	return false;
}

static bool grpc_read(struct rpc_ctx *ctx)
{
	struct rpc_grpc_call *g = &ctx->t.grpc;
	grpc_op ops[1];
	size_t n = 0;
	g->recv_bb = NULL;
	add_op(ops, &n, GRPC_OP_RECV_MESSAGE)->data.recv_message.recv_message = &g->recv_bb;
	return start_batch(ctx, ops, n, &g->t_read);
}

static void grpc_cancel(struct rpc_ctx *ctx, const char *why)
{
	grpc_call_cancel_with_status(ctx->t.grpc.call, GRPC_STATUS_CANCELLED, why, NULL);
}

static void grpc_release(struct rpc_ctx *ctx)
{
	struct rpc_grpc_call *g = &ctx->t.grpc;
	if (g->payload)
		grpc_byte_buffer_destroy(g->payload);
	if (g->answer_bb)
		grpc_byte_buffer_destroy(g->answer_bb);
	grpc_slice_unref(g->details);
	grpc_metadata_array_destroy(&g->md);
	if (g->call)
		grpc_call_unref(g->call);
}

const struct rpc_transport rpc__grpc_transport = {
        .name = "gRPC",
        .take_request = grpc_take_request,
        .metadata = grpc_metadata_value,
        .send_status = grpc_send_status,
        .open_stream = grpc_open_stream,
        .send_message = grpc_send_message,
        .read = grpc_read,
        .cancel = grpc_cancel,
        .release = grpc_release,
};

/* ---- events ---- */

void rpc__grpc_adopt(struct rpc_ctx *ctx, grpc_call *call, grpc_metadata_array *md,
                     grpc_byte_buffer *payload)
{
	struct rpc_grpc_call *g = &ctx->t.grpc;
	g->call = call;
	g->md = *md;
	g->payload = payload;
	g->t_finish = (struct rpc_tag){TAG_FINISH, ctx};
	g->t_read = (struct rpc_tag){TAG_READ, ctx};
	g->t_send = (struct rpc_tag){TAG_SEND, ctx};
	g->t_close = (struct rpc_tag){TAG_CLOSE, ctx};
	ctx->peer = grpc_call_get_peer(call);
}

/* A read completed: the message's bytes to the stream (end: the client closed its side). */
struct read_args {
	struct rpc_ctx *ctx; /* the call */
};

static void read_bytes(const uint8_t *buf, size_t len, void *arg)
{
	struct read_args *a = arg;
	rpc__stream_received(a->ctx, true, buf, len, false);
}

static void grpc_read_done(struct rpc_ctx *ctx, bool ok)
{
	grpc_byte_buffer *bb = ctx->t.grpc.recv_bb;
	ctx->t.grpc.recv_bb = NULL;
	if (!ok || bb == NULL) {
		rpc__stream_received(ctx, ok, NULL, 0, ok);
	} else {
		struct read_args a = {ctx};
		if (!with_bytes(bb, read_bytes, &a))
			rpc__stream_received(ctx, true, NULL, 0, false); /* not a message */
	}
	if (bb)
		grpc_byte_buffer_destroy(bb);
}

void rpc__grpc_done(struct rpc_tag *t, bool ok)
{
	struct rpc_ctx *ctx = t->ctx;
	switch (t->kind) {
	case TAG_SLOT: /* loop.c's */
		break;
	case TAG_FINISH:
		if (ctx->is_stream) {
			rpc__stream_status_sent(ctx, ok);
		} else { /* a unary answer went out: what the client saw */
			if (!ok || ctx->t.grpc.cancelled)
				ctx->code = RPC_CANCELLED;
			rpc__ctx_unref(ctx);
		}
		break;
	case TAG_READ:
		grpc_read_done(ctx, ok);
		break;
	case TAG_SEND:
		grpc_byte_buffer_destroy(ctx->t.grpc.send_bb);
		ctx->t.grpc.send_bb = NULL;
		rpc__stream_sent(ctx, ok);
		break;
	case TAG_CLOSE:
		rpc__stream_closed(ctx, ok, ctx->t.grpc.cancelled != 0);
		break;
	}
}
