/*
 * call.c - the life of a call, whatever transport carried it (see internal.h): set-up, admission
 * (max_calls, max_streams), dispatch to the application's entry, the unary answer, references,
 * and the end that reports and frees it. Also the accessors handlers use (rpc.h).
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
	if (ctx->deadline_ms == 0)
		return -1;
	int64_t left = ctx->deadline_ms - clock_mono_ms();
	return left < 0 ? 0 : left;
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

const char *rpc__call_message(struct rpc_ctx *ctx, int code)
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

int rpc__call_take_request(struct rpc_ctx *ctx, const ProtobufCMessageDescriptor *desc,
                           ProtobufCMessage **out)
{
	const char *bad = NULL;
	int rc = ctx->transport->take_request(ctx, desc, out, &bad);
	if (rc == -1)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "the request carries no message");
	return rc == 0 ? RPC_OK : unpack_failed(ctx, desc, bad);
}

int rpc__call_unpack(struct rpc_ctx *ctx, const ProtobufCMessageDescriptor *desc,
                     const uint8_t *buf, size_t len, ProtobufCMessage **out)
{
	const char *bad = NULL;
	*out = buf != NULL ? rpc__unpack(desc, buf, len, &bad) : NULL;
	return *out != NULL ? RPC_OK : unpack_failed(ctx, desc, bad);
}

/* ---- set-up, admission, dispatch ---- */

struct rpc_ctx *rpc__call_new(struct rpc_server *srv, const struct rpc_transport *transport,
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
	ctx->next = srv->live;
	if (srv->live)
		srv->live->prev = ctx;
	srv->live = ctx;
	srv->n_calls++;
	pthread_mutex_unlock(&srv->mu);
	return ctx;
}

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
	int code = rpc__call_take_request(ctx, m->input, &ctx->req);
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
	rpc__call_unref(ctx);
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

/* ---- references and the end ---- */

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
		        .request_id = atomic_fetch_add(&srv->next_id, 1) + 1,
		        .code = ctx->code,
		        .duration_ms = (double)(t1.tv_sec - ctx->t0.tv_sec) * 1e3 +
		                       (double)(t1.tv_nsec - ctx->t0.tv_nsec) / 1e6,
		};
		srv->opts.on_call(&info, srv->opts.app);
	}
	if (ctx->is_stream)
		rpc__stream_free(ctx);
	rpc_message_free(ctx->req);
	ctx->transport->release(ctx);
	gpr_free(ctx->unknown_path);
	gpr_free(ctx->peer);
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
	rpc__arena_free(ctx);
	free(ctx);
}

void rpc__call_ref(struct rpc_ctx *ctx)
{
	atomic_fetch_add(&ctx->refs, 1);
}

void rpc__call_unref(struct rpc_ctx *ctx)
{
	if (atomic_fetch_sub(&ctx->refs, 1) == 1)
		call_end(ctx);
}
