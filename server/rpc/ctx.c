/*
 * ctx.c - the call's context, whatever transport carried it (see internal.h): set-up, the
 * accessors handlers use (rpc.h), its request unpacked, references, and the end that reports and
 * frees it.
 */
#include <grpc/support/alloc.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coffer_shared.h"
#include "internal.h"

const char *rpc_code_name(int code)
{
	return coffer_status_name(code);
}

/* ---- what handlers ask of their call ---- */

int rpc_failv(struct rpc_ctx *ctx, int code, const char *fmt, va_list ap)
{
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	ctx->message = rpc_strdup(ctx, buf);
	return code;
}

int rpc_fail(struct rpc_ctx *ctx, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rpc_failv(ctx, code, fmt, ap);
	va_end(ap);
	return code;
}

void rpc_clear_message(struct rpc_ctx *ctx)
{
	ctx->message = NULL;
}

int64_t rpc_remaining_ms(const struct rpc_ctx *ctx)
{
	if (ctx->deadline_ms == 0)
		return -1;
	int64_t left = ctx->deadline_ms - clock_mono_ms();
	return left < 0 ? 0 : left;
}

const char *rpc_transport(const struct rpc_ctx *ctx)
{
	return ctx->label ? ctx->label : "grpc";
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
	return ctx->transport ? ctx->transport->metadata(ctx, key) : NULL;
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

const char *rpc__ctx_message(struct rpc_ctx *ctx, int code)
{
	if (code == RPC_UNIMPLEMENTED && ctx->message == NULL && ctx->method)
		rpc_fail(ctx, code, "%s is not implemented yet", ctx->method->path);
	return ctx->message ? ctx->message : (code == RPC_OK ? "" : rpc_code_name(code));
}

/* ---- contexts without a transport (the fuzz targets) ---- */

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
	rpc__arena_free(ctx);
	free(ctx);
}

/* ---- requests ---- */

static int unpack_failed(struct rpc_ctx *ctx, const ProtobufCMessageDescriptor *desc,
                         const char *bad)
{
	if (bad != NULL)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "field %s is not valid UTF-8 or holds a NUL byte", bad);
	return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "the request is not a valid %s message",
	                desc->name);
}

int rpc__ctx_take_request(struct rpc_ctx *ctx, const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **out)
{
	const char *bad = NULL;
	int rc = ctx->transport->take_request(ctx, desc, out, &bad);
	if (rc == -1)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "the request carries no message");
	return rc == 0 ? RPC_OK : unpack_failed(ctx, desc, bad);
}

int rpc__ctx_unpack(struct rpc_ctx *ctx, const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                    size_t len, ProtobufCMessage **out)
{
	const char *bad = NULL;
	*out = buf != NULL ? rpc__unpack(desc, buf, len, &bad) : NULL;
	return *out != NULL ? RPC_OK : unpack_failed(ctx, desc, bad);
}

/* ---- set-up ---- */

struct rpc_ctx *rpc__ctx_new(struct rpc_server *srv, const struct rpc_transport *transport,
                             const coffer_method_desc *method, const void *handlers,
                             int64_t deadline_ms)
{
	struct rpc_ctx *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &ctx->t0);
	ctx->srv = srv;
	ctx->transport = transport;
	ctx->method = method;
	ctx->handlers = handlers;
	ctx->deadline_ms = deadline_ms;
	atomic_init(&ctx->refs, 1);
	/* In the list of calls in flight from now: a shutdown waits for it. */
	pthread_mutex_lock(&srv->mu);
	list_add(&srv->live, &ctx->node);
	srv->n_calls++;
	pthread_mutex_unlock(&srv->mu);
	return ctx;
}

/* ---- references and the end ---- */

/* What a stream still holds: messages never sent, its lock, its place among the streams. */
static void stream_free(struct rpc_ctx *ctx)
{
	atomic_fetch_sub(&ctx->srv->streams, 1);
	for (struct out_msg *m = ctx->stream.q_head, *next; m; m = next) {
		next = m->next;
		rpc__packed_free(m->buf, m->len);
		free(m);
	}
	pthread_mutex_destroy(&ctx->mu);
}

/* The call is over and nothing refers to it: report it and free it. Leaving the list of calls in
 * flight is the last thing it does with the server, which a shutdown may free right after. */
static void call_end(struct rpc_ctx *ctx)
{
	struct rpc_server *srv = ctx->srv;
	if (srv->opts.on_call) {
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		struct rpc_call_info info = {
		        .method = rpc_method(ctx),
		        .project = ctx->project,
		        .peer = rpc_peer(ctx),
		        .transport = rpc_transport(ctx),
		        .request_id = atomic_fetch_add(&srv->next_id, 1) + 1,
		        .code = ctx->code,
		        .duration_ms = (double)(t1.tv_sec - ctx->t0.tv_sec) * 1e3 +
		                       (double)(t1.tv_nsec - ctx->t0.tv_nsec) / 1e6,
		};
		srv->opts.on_call(&info, srv->opts.app);
	}
	if (ctx->is_stream)
		stream_free(ctx);
	rpc__packed_free(ctx->packed, ctx->packed_len);
	rpc_message_free(ctx->req);
	ctx->transport->release(ctx);
	gpr_free(ctx->unknown_path);
	gpr_free(ctx->peer);
	pthread_mutex_lock(&srv->mu);
	list_remove(&ctx->node);
	srv->n_calls--;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	rpc__arena_free(ctx);
	free(ctx);
}

void rpc__ctx_ref(struct rpc_ctx *ctx)
{
	atomic_fetch_add(&ctx->refs, 1);
}

void rpc__ctx_unref(struct rpc_ctx *ctx)
{
	if (atomic_fetch_sub(&ctx->refs, 1) == 1)
		call_end(ctx);
}
