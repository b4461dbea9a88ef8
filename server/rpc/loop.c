/*
 * loop.c - the event loop (see internal.h): request slots posted on the one completion queue, the
 * worker threads that drain it, and the reaper.
 *
 * Every method has several slots posted up front, and one more set catches methods nobody
 * registered: without it, a call for an unknown method would wait for a slot that never comes,
 * where it must get UNIMPLEMENTED at once. A slot is posted again as soon as its call arrives, so
 * calls in flight are bounded by max_calls, not by slots or threads.
 */
#include <grpc/grpc.h>
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
		rpc__grpc_event(srv, ev.tag, ev.success != 0);
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
		for (struct rpc_ctx *c = srv->live; c; c = c->next) {
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
