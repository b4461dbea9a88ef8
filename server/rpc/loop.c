/*
 * loop.c - the event loop (see internal.h): request slots posted on the one completion queue, a
 * call that arrives in one made into a struct rpc_ctx and dispatched, the worker threads that
 * drain the queue, and the reaper.
 *
 * Every method has several slots posted up front, and one more set catches methods nobody
 * registered: without it, a call for an unknown method would wait for a slot that never comes,
 * where it must get UNIMPLEMENTED at once. A slot is posted again as soon as its call arrives, so
 * calls in flight are bounded by max_calls, not by slots or threads.
 */
#include <grpc/grpc.h>
#include <grpc/support/string_util.h>
#include <grpc/support/time.h>

#include "clock.h"
#include "internal.h"
#include "log.h"

/* How often the reaper looks for clients that keep a call waiting. */
#define REAPER_PERIOD_MS 100

bool rpc__slot_post(struct rpc_slot *slot)
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

/* A deadline of gRPC's clocks as monotonic milliseconds (0: none). */
static int64_t mono_deadline(gpr_timespec dl)
{
	if (gpr_time_cmp(dl, gpr_inf_future(dl.clock_type)) == 0)
		return 0;
	int64_t left = gpr_time_to_millis(gpr_time_sub(dl, gpr_now(dl.clock_type)));
	return clock_mono_ms() + (left > 0 ? left : 0);
}

/* What the slot holds, let go of (a call refused before it became one). */
static void slot_clear(struct rpc_slot *slot)
{
	grpc_metadata_array_destroy(&slot->md);
	if (slot->method == NULL)
		grpc_call_details_destroy(&slot->details);
}

void rpc__grpc_arrived(struct rpc_server *srv, struct rpc_slot *slot, bool success)
{
	slot->posted = false;
	if (!success) { /* shutting down: this request will never be filled */
		slot_clear(slot);
		return;
	}
	bool known = slot->method != NULL;
	struct rpc_ctx *ctx =
	        rpc__ctx_new(srv, &rpc__grpc_transport, slot->method, slot->handlers,
	                     mono_deadline(known ? slot->deadline : slot->details.deadline));
	if (ctx == NULL) {
		grpc_call_cancel_with_status(slot->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		                             "out of memory", NULL);
		grpc_call_unref(slot->call);
		if (slot->payload)
			grpc_byte_buffer_destroy(slot->payload);
		slot_clear(slot);
	} else {
		rpc__grpc_adopt(ctx, slot->call, &slot->md, slot->payload);
		if (!known) {
			ctx->unknown_path = grpc_slice_to_c_string(slot->details.method);
			grpc_call_details_destroy(&slot->details);
		}
	}
	/* The slot takes the next call while this one runs. */
	if (!atomic_load(&srv->shutting_down))
		rpc__slot_post(slot);
	if (ctx != NULL)
		rpc__call_dispatch(ctx);
}

void *rpc__worker_main(void *arg)
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
		if (t->kind == TAG_SLOT)
			rpc__grpc_arrived(srv, (struct rpc_slot *)t, ev.success != 0);
		else
			rpc__grpc_done(t, ev.success != 0);
	}
	return NULL;
}

/* Cancels calls whose client has kept a read or a send waiting past its deadline. */
void *rpc__reaper_main(void *arg)
{
	struct rpc_server *srv = arg;
	pthread_mutex_lock(&srv->mu);
	while (!srv->stopping) {
		struct timespec until = clock_realtime_after_ms(REAPER_PERIOD_MS);
		pthread_cond_timedwait(&srv->reaper_cv, &srv->mu, &until);
		int64_t now = clock_mono_ms();
		struct rpc_ctx *c;
		list_for_each_entry(c, &srv->live, node)
		{
			long long r = atomic_load(&c->read_deadline);
			long long w = atomic_load(&c->send_deadline);
			if (c->cancel_sent || !((r && now > r) || (w && now > w)))
				continue;
			c->cancel_sent = true;
			log_warn("%s: the client kept the call waiting %s: cancelled",
			         rpc_method(c),
			         r && now > r ? "without sending" : "without taking its answer");
			c->transport->cancel(c, "the client kept the call waiting too long");
		}
	}
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}
