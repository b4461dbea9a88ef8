/*
 * local.c - the local transport (see internal.h): a call made inside the process by another
 * listener (the HTTP listener's REST reads and Connect), run as a gRPC call of the same method
 * would be: the same entry, admission, deadline, call log and metrics. Its request and metadata
 * are copies it wipes. A unary answer goes to the caller's callback; a server stream's messages
 * and end go to the caller's ops, and the caller says when each has gone out
 * (rpc_local_stream_sent, rpc_local_stream_closed), so a slow client holds back the stream as a
 * slow gRPC client does. Client streams are not carried.
 */
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "internal.h"

static int local_take_request(struct rpc_ctx *ctx, const ProtobufCMessageDescriptor *desc,
                              ProtobufCMessage **out, const char **bad)
{
	struct rpc_local_call *l = &ctx->t.local;
	*out = rpc__unpack(desc, l->request, l->request_len, bad);
	rpc__packed_free(l->request, l->request_len);
	l->request = NULL;
	return *out ? 0 : -2;
}

static const char *local_metadata(struct rpc_ctx *ctx, const char *key)
{
	struct rpc_local_call *l = &ctx->t.local;
	for (size_t i = 0; i < l->n_md; i++)
		if (strcmp(l->md[2 * i], key) == 0)
			return rpc_strdup(ctx, l->md[2 * i + 1]);
	return NULL;
}

/* Unary: the answer to the callback. Streams (under ctx->mu): the end to the carrier, which
 * gives back the reference taken here with rpc_local_stream_closed. */
static void local_send_status(struct rpc_ctx *ctx, int code, const ProtobufCMessage *resp)
{
	struct rpc_local_call *l = &ctx->t.local;
	if (!ctx->is_stream) {
		/* An answer given packed goes to the caller as a message, like any other. */
		ProtobufCMessage *unpacked = NULL;
		if (resp != NULL && ctx->packed != NULL) {
			unpacked = rpc__unpack_trusted(ctx->method->output, ctx->packed,
			                               ctx->packed_len);
			if (unpacked == NULL)
				code = rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
			resp = unpacked;
		}
		l->done(l->arg, code, rpc__ctx_message(ctx, code), resp,
		        ctx->retryable && code == RPC_UNAVAILABLE);
		rpc_message_free(unpacked);
		return;
	}
	ctx->code = code;
	if (atomic_exchange(&l->ended, true))
		return; /* cancelled, or the carrier closed: nothing goes out */
	rpc__ctx_ref(ctx);
	l->status_out = true;
	l->ops->end(l->arg, ctx, code, rpc__ctx_message(ctx, code));
}

/* The reference the carrier gives back with rpc_local_stream_closed. */
static bool local_open_stream(struct rpc_ctx *ctx)
{
	rpc__ctx_ref(ctx);
	return true;
}

/* Under ctx->mu. */
static bool local_send_message(struct rpc_ctx *ctx, uint8_t *packed, size_t len)
{
	struct rpc_local_call *l = &ctx->t.local;
	if (atomic_load(&l->ended)) {
		rpc__packed_free(packed, len);
		return false;
	}
	rpc__ctx_ref(ctx);
	l->send_out = true;
	l->ops->message(l->arg, ctx, packed, len);
	return true;
}

/* A stream ends for its carrier now, with CANCELLED and why (the reaper, a drain, the
 * application giving it up); its close follows from the carrier. A unary call has nothing to
 * cancel: it sets no read or send deadline for the reaper. */
static void local_cancel(struct rpc_ctx *ctx, const char *why)
{
	struct rpc_local_call *l = &ctx->t.local;
	if (!ctx->is_stream || atomic_exchange(&l->ended, true))
		return;
	l->ops->end(l->arg, ctx, RPC_CANCELLED, why);
}

static void local_release(struct rpc_ctx *ctx)
{
	struct rpc_local_call *l = &ctx->t.local;
	rpc__packed_free(l->request, l->request_len);
	for (size_t i = 0; i < 2 * l->n_md; i++)
		if (l->md[i] != NULL)
			rpc__packed_free(l->md[i], strlen(l->md[i]));
	free(l->md);
}

const struct rpc_transport rpc__local_transport = {
        .name = "a local call",
        .take_request = local_take_request,
        .metadata = local_metadata,
        .send_status = local_send_status,
        .open_stream = local_open_stream,
        .send_message = local_send_message,
        .cancel = local_cancel,
        .release = local_release,
};

void rpc_local_stream_sent(struct rpc_ctx *ctx)
{
	pthread_mutex_lock(&ctx->mu);
	bool out = ctx->t.local.send_out;
	ctx->t.local.send_out = false;
	pthread_mutex_unlock(&ctx->mu);
	if (out)
		rpc__stream_sent(ctx, true);
}

void rpc_local_stream_closed(struct rpc_ctx *ctx, bool ok)
{
	struct rpc_local_call *l = &ctx->t.local;
	pthread_mutex_lock(&ctx->mu);
	bool send = l->send_out, status = l->status_out;
	l->send_out = l->status_out = false;
	atomic_store(&l->ended, true);
	pthread_mutex_unlock(&ctx->mu);
	if (send)
		rpc__stream_sent(ctx, false);
	if (status)
		rpc__stream_status_sent(ctx, ok);
	rpc__stream_closed(ctx, ok && status, !(ok && status));
}

const coffer_method_desc *rpc_server_method(const struct rpc_server *srv, const char *path)
{
	for (size_t i = 0; i < srv->n_slots; i++)
		if (srv->slots[i].method && strcmp(srv->slots[i].method->path, path) == 0)
			return srv->slots[i].method;
	return NULL;
}

/* Copies the request, metadata and peer into ctx; false on OOM. */
static bool local_copy(struct rpc_ctx *ctx, const struct rpc_local_req *r)
{
	struct rpc_local_call *l = &ctx->t.local;
	l->md = calloc(2 * r->n_md + 1, sizeof(char *));
	l->request = malloc(r->len ? r->len : 1);
	ctx->peer = gpr_strdup(r->peer);
	if (l->md == NULL || l->request == NULL || ctx->peer == NULL)
		return false;
	memcpy(l->request, r->packed, r->len);
	l->request_len = r->len;
	for (size_t i = 0; i < r->n_md; i++) {
		l->md[2 * i] = strdup(r->md[2 * i]);
		l->md[2 * i + 1] = strdup(r->md[2 * i + 1]);
		l->n_md = i + 1;
		if (l->md[2 * i] == NULL || l->md[2 * i + 1] == NULL)
			return false;
	}
	return true;
}

/* A new local call of r (a stream or not, as stream says): 0 with *out, or the code to refuse. */
static int local_new(struct rpc_server *srv, const struct rpc_local_req *r, bool stream,
                     struct rpc_ctx **out)
{
	const struct rpc_slot *slot = NULL;
	for (size_t i = 0; i < srv->n_slots && slot == NULL; i++)
		if (srv->slots[i].method && strcmp(srv->slots[i].method->path, r->path) == 0)
			slot = &srv->slots[i];
	if (slot == NULL || slot->method->client_streaming ||
	    slot->method->server_streaming != stream)
		return RPC_NOT_FOUND;
	if (atomic_load(&srv->shutting_down))
		return RPC_UNAVAILABLE;
	*out = rpc__ctx_new(srv, &rpc__local_transport, slot->method, slot->handlers,
	                    r->timeout_ms > 0 ? clock_mono_ms() + r->timeout_ms : 0);
	if (*out == NULL)
		return RPC_RESOURCE_EXHAUSTED;
	(*out)->label = r->transport ? r->transport : "local";
	return 0;
}

int rpc_local_call(struct rpc_server *srv, const struct rpc_local_req *r, rpc_local_done_fn done,
                   void *arg)
{
	struct rpc_ctx *ctx = NULL;
	int code = local_new(srv, r, false, &ctx);
	if (code)
		return code;
	ctx->t.local.done = done;
	ctx->t.local.arg = arg;
	if (!local_copy(ctx, r))
		rpc__call_answer(ctx, rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory"));
	else
		rpc__call_dispatch(ctx);
	return 0;
}

int rpc_local_stream(struct rpc_server *srv, const struct rpc_local_req *r,
                     const struct rpc_local_stream_ops *ops, void *arg, struct rpc_ctx **out)
{
	struct rpc_ctx *ctx = NULL;
	int code = local_new(srv, r, true, &ctx);
	if (code)
		return code;
	ctx->t.local.ops = ops;
	ctx->t.local.arg = arg;
	if (!local_copy(ctx, r)) {
		/* not a stream yet: nothing was handed to ops, and the call ends here */
		ctx->code = RPC_RESOURCE_EXHAUSTED;
		rpc__ctx_unref(ctx);
		return RPC_RESOURCE_EXHAUSTED;
	}
	*out = ctx;
	rpc__call_dispatch(ctx);
	return 0;
}
