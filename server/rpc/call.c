/*
 * call.c - a call's way through the runtime once its transport has made it (see internal.h):
 * admission (max_calls for unary calls; streams are admitted by stream.c against max_streams),
 * dispatch to the application's entry, and the unary answer, now or later from any thread.
 */
#include "internal.h"

/* Whether the calls in flight, a new one included, are more than max_calls. Streams are bounded by
 * max_streams instead (rpc__stream_begin): a fleet's watches do not take the room of unary calls.
 */
static bool too_many_calls(struct rpc_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	int calls = srv->n_calls - atomic_load(&srv->streams);
	pthread_mutex_unlock(&srv->mu);
	return calls > srv->max_calls;
}

/* A unary call: unpack and run the entry. */
static void begin_unary(struct rpc_ctx *ctx)
{
	struct rpc_server *srv = ctx->srv;
	const coffer_method_desc *m = ctx->method;
	int code = rpc__ctx_take_request(ctx, m->input, &ctx->req);
	if (code == RPC_OK && (ctx->resp = rpc_alloc(ctx, m->output->sizeof_message)) == NULL)
		code = rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (code == RPC_OK) {
		protobuf_c_message_init(m->output, ctx->resp);
		code = srv->opts.unary(srv->opts.app, ctx, m, ctx->handlers, ctx->req, ctx->resp);
		if (code == RPC_PENDING)
			return; /* the application holds the call; it answers with rpc_complete */
	}
	rpc__call_answer(ctx, code);
}

void rpc__call_dispatch(struct rpc_ctx *ctx)
{
	const coffer_method_desc *m = ctx->method;
	if (m == NULL)
		rpc__call_answer(ctx, rpc_fail(ctx, RPC_UNIMPLEMENTED, "unknown method %s",
		                               ctx->unknown_path));
	else if (m->invoke_stream && ctx->transport->open_stream == NULL)
		rpc__call_answer(ctx, rpc_fail(ctx, RPC_UNIMPLEMENTED,
		                               "%s is a stream, which %s does not carry", m->path,
		                               ctx->transport->name));
	else if (m->invoke_stream)
		rpc__stream_begin(ctx);
	else if (too_many_calls(ctx->srv))
		rpc__call_answer(ctx, rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED,
		                               "too many calls are in flight on this replica; try "
		                               "again later"));
	else
		begin_unary(ctx);
}

void rpc__call_answer(struct rpc_ctx *ctx, int code)
{
	if (code == RPC_OK && ctx->oom)
		code = rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	ctx->code = code;
	ctx->transport->send_status(ctx, code, code == RPC_OK ? ctx->resp : NULL);
	rpc__ctx_unref(ctx);
}

void rpc_answer_packed(struct rpc_ctx *ctx, uint8_t *packed, size_t len)
{
	rpc__packed_free(ctx->packed, ctx->packed_len);
	ctx->packed = packed;
	ctx->packed_len = len;
}

void rpc_complete(struct rpc_ctx *ctx, int code)
{
	if (ctx->srv == NULL) { /* a detached context: whoever drives it waits for this */
		ctx->code = code;
		atomic_store(&ctx->refs, -1);
		return;
	}
	rpc__call_answer(ctx, code);
}
