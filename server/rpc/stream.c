/*
 * stream.c - streaming calls, whatever transport carries them (see internal.h): the queue of
 * messages going out (one send at a time, then the status once the queue is empty), reads coming
 * in for the application's callbacks, finishing, and the end.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "internal.h"

struct rpc_ctx *rpc_stream_ctx(struct rpc_stream *st)
{
	return st->ctx;
}

/* With ctx->mu held: asks for the next request message. */
static void post_read(struct rpc_ctx *ctx)
{
	if (ctx->srv->opts.stream_idle_ms > 0)
		atomic_store(&ctx->read_deadline, clock_mono_ms() + ctx->srv->opts.stream_idle_ms);
	ctx->stream.read_out = ctx->transport->read(ctx);
}

/* With ctx->mu held: sends the next queued message, or the status once none is left. */
static void pump(struct rpc_ctx *ctx)
{
	struct rpc_stream *st = &ctx->stream;
	if (st->sending || st->finish_started || ctx->failed)
		return;
	if (st->q_head) {
		struct out_msg *m = st->q_head;
		st->q_head = m->next;
		if (st->q_head == NULL)
			st->q_tail = NULL;
		st->q_len--;
		st->sending = true;
		if (ctx->srv->opts.send_timeout_ms > 0)
			atomic_store(&ctx->send_deadline,
			             clock_mono_ms() + ctx->srv->opts.send_timeout_ms);
		if (!ctx->transport->send_message(ctx, m->buf, m->len))
			st->sending = false;
		free(m);
		return;
	}
	if (!st->finish_asked)
		return;
	st->finish_started = true;
	ctx->transport->send_status(ctx, st->finish_code, NULL);
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
	if (m == NULL || !rpc__pack(msg, &m->buf, &m->len)) {
		free(m);
		return -1;
	}
	pthread_mutex_lock(&ctx->mu);
	if (ctx->failed || st->finish_asked || st->done || st->q_len >= max_queued) {
		pthread_mutex_unlock(&ctx->mu);
		rpc__packed_free(m->buf, m->len);
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

/* With ctx->mu held: the first finish wins; message (arena-owned, may be NULL) goes with it. */
static void finish_locked(struct rpc_stream *st, int code, char *message)
{
	if (st->finish_asked)
		return;
	if (message != NULL)
		st->ctx->message = message;
	st->finish_asked = true;
	st->finish_code = code;
	pump(st->ctx);
}

void rpc_stream_finish(struct rpc_stream *st, int code)
{
	pthread_mutex_lock(&st->ctx->mu);
	finish_locked(st, code, NULL);
	pthread_mutex_unlock(&st->ctx->mu);
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
	/* The arena is the call's, and one thread at a time uses it: this one, under the lock. */
	if (!st->finish_asked)
		finish_locked(st, code, rpc_strdup(ctx, buf));
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
		ctx->transport->cancel(ctx, "the server gave up the stream");
	rpc__ctx_unref(ctx);
}

void rpc__stream_received(struct rpc_ctx *ctx, bool ok, const uint8_t *buf, size_t len, bool end)
{
	struct rpc_stream *st = &ctx->stream;
	atomic_store(&ctx->read_deadline, 0);
	pthread_mutex_lock(&ctx->mu);
	st->read_out = false;
	bool deliver = ok && st->h && st->h->on_read && !st->finish_asked && !st->done;
	pthread_mutex_unlock(&ctx->mu);
	if (deliver && end) {
		st->half_closed = true;
		st->h->on_read(st, NULL, st->arg);
	} else if (deliver) {
		ProtobufCMessage *msg = NULL;
		int code = rpc__ctx_unpack(ctx, ctx->method->input, buf, len, &msg);
		if (code == RPC_OK)
			st->h->on_read(st, msg, st->arg);
		else
			rpc_stream_finish(st, code);
	}
	/* The next message, until the client closes its side or the stream finishes. */
	pthread_mutex_lock(&ctx->mu);
	if (ok && !end && st->reading && !st->finish_asked && !ctx->failed && !st->read_out)
		post_read(ctx);
	pthread_mutex_unlock(&ctx->mu);
	rpc__ctx_unref(ctx);
}

void rpc__stream_sent(struct rpc_ctx *ctx, bool ok)
{
	struct rpc_stream *st = &ctx->stream;
	atomic_store(&ctx->send_deadline, 0);
	pthread_mutex_lock(&ctx->mu);
	st->sending = false;
	if (!ok)
		ctx->failed = true;
	else
		pump(ctx);
	pthread_mutex_unlock(&ctx->mu);
	rpc__ctx_unref(ctx);
}

void rpc__stream_status_sent(struct rpc_ctx *ctx, bool ok)
{
	pthread_mutex_lock(&ctx->mu);
	ctx->failed = ctx->failed || !ok;
	pthread_mutex_unlock(&ctx->mu);
	rpc__ctx_unref(ctx);
}

void rpc__stream_closed(struct rpc_ctx *ctx, bool ok, bool cancelled)
{
	struct rpc_stream *st = &ctx->stream;
	pthread_mutex_lock(&ctx->mu);
	cancelled = !ok || cancelled || !st->finish_started;
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
	rpc__ctx_unref(ctx);
}

void rpc__stream_begin(struct rpc_ctx *ctx)
{
	struct rpc_server *srv = ctx->srv;
	ctx->is_stream = true;
	ctx->stream.ctx = ctx;
	pthread_mutex_init(&ctx->mu, NULL);
	atomic_fetch_add(&srv->streams, 1);
	if (!ctx->transport->open_stream(ctx)) {
		ctx->code = RPC_CANCELLED;
		rpc__ctx_unref(ctx);
		return;
	}
	int code = RPC_OK;
	if (atomic_load(&srv->streams) > srv->max_streams)
		code = rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED,
		                "too many streams are open on this replica; try again later");
	else if (!ctx->method->client_streaming)
		code = rpc__ctx_take_request(ctx, ctx->method->input, &ctx->req);
	if (code == RPC_OK)
		code = srv->opts.stream(srv->opts.app, ctx, ctx->method, ctx->handlers, ctx->req,
		                        &ctx->stream);
	if (code == RPC_PENDING)
		return; /* the application holds the stream until rpc_stream_release */
	rpc_stream_finish(&ctx->stream, code);
	rpc__ctx_unref(ctx);
}
