/*
 * local.c - the local transport (see internal.h): a unary call made inside the process by another
 * listener (the HTTP endpoint), run as a gRPC call of the same method would be: the same entry,
 * admission, deadline, call log and metrics. Its request and metadata are copies it wipes; its
 * answer goes to the caller's callback. It carries no streams.
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

static void local_send_status(struct rpc_ctx *ctx, int code, const ProtobufCMessage *resp)
{
	ctx->t.local.done(ctx->t.local.arg, code, rpc__ctx_message(ctx, code), resp);
}

/* Nothing to cancel: a local call sets no read or send deadline for the reaper. */
static void local_cancel(struct rpc_ctx *ctx, const char *why)
{
	(void)ctx;
	(void)why;
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
        .cancel = local_cancel,
        .release = local_release,
};

/* Copies the request, metadata and peer into ctx; false on OOM. */
static bool local_copy(struct rpc_ctx *ctx, const uint8_t *packed, size_t len,
                       const char *const *md, size_t n_md, const char *peer)
{
	struct rpc_local_call *l = &ctx->t.local;
	l->md = calloc(2 * n_md + 1, sizeof(char *));
	l->request = malloc(len ? len : 1);
	ctx->peer = gpr_strdup(peer);
	if (l->md == NULL || l->request == NULL || ctx->peer == NULL)
		return false;
	memcpy(l->request, packed, len);
	l->request_len = len;
	for (size_t i = 0; i < n_md; i++) {
		l->md[2 * i] = strdup(md[2 * i]);
		l->md[2 * i + 1] = strdup(md[2 * i + 1]);
		l->n_md = i + 1;
		if (l->md[2 * i] == NULL || l->md[2 * i + 1] == NULL)
			return false;
	}
	return true;
}

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
	struct rpc_ctx *ctx = rpc__ctx_new(srv, &rpc__local_transport, slot->method, slot->handlers,
	                                   timeout_ms > 0 ? clock_mono_ms() + timeout_ms : 0);
	if (ctx == NULL)
		return RPC_RESOURCE_EXHAUSTED;
	ctx->t.local.done = done;
	ctx->t.local.arg = arg;
	if (!local_copy(ctx, packed, len, md, n_md, peer))
		rpc__call_answer(ctx, rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory"));
	else
		rpc__call_dispatch(ctx);
	return 0;
}
