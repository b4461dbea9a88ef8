/*
 * run.h - where a call runs (run.c): the runtime's entries, the database threads and parked calls,
 * and streams handed over by their handlers.
 */
#ifndef COFFER_API_RUN_H
#define COFFER_API_RUN_H

#include "call.h"

/* The runtime's entries (rpc_unary_fn and rpc_stream_fn; app is the struct api): each makes the
 * call's owner (struct call, call.h), decides access, runs the handler, writes the audit row the
 * call needs, and frees what the call owned. */
int api_unary(void *app, struct rpc_ctx *ctx, const coffer_method_desc *m, const void *handlers,
              const ProtobufCMessage *req, ProtobufCMessage *resp);
int api_stream(void *app, struct rpc_ctx *ctx, const coffer_method_desc *m, const void *handlers,
               const ProtobufCMessage *req, struct rpc_stream *stream);
/* A stream's handler is done with its call: audits it if it must, frees it, releases the stream.
 * From the stream's on_done. */
void api_stream_done(struct call *c, int code);
/* A stream's handler keeps the stream but not its call (whose row is written: the opening's):
 * frees the call and returns the stream, which the handler releases (rpc_stream_release) when
 * it is over. Holding the call for the stream's life would cost a token's copy per stream. */
struct rpc_stream *api_stream_detach(struct call *c);
/* The database threads and the waits of a (run.c), when a->cfg.db_threads > 0. */
int api_run_start(struct api *a, struct cof_err *e) __attribute__((warn_unused_result));
/* Answers what is parked, runs what is queued, stops the threads. */
void api_run_stop(struct api *a);

#endif
