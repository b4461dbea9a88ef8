/*
 * run.c - where a call runs, from the runtime's entry to its answer (see call.h).
 *
 *   entry (gRPC thread, CALL_INLINE)
 *     -> authorize from memory (the token cache)           -- needs the database? to a job
 *     -> the handler, if its policy allows it inline        -- needs the database? to a job
 *   job (database thread, CALL_DB): authorize and the handler again, with a connection
 *     -> the handler may park the call for a revision (waits.c), which wakes it into a job
 *   finish: the audit row an answer with values or effects needs goes to the audit writer, which
 *     answers after its batch commits (CALL_ASYNC); a refusal's or a failure's row is queued and
 *     the answer leaves at once, as does an answer that needs no row.
 *
 * Each hand-off (to a job, a wait, the audit writer) is the last thing its thread does with the
 * call: from then on another thread may own it. What the domain hears (changes, revocations) is
 * fanned out to parked calls and watches by api.c.
 */
#include <stdatomic.h>
#include <string.h>

#include "call.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "run.h"
#include "waits.h"
#include "workq.h"

static int run(struct call *c);

/* The call is answered with code: returned to the runtime inline, else sent from here. The call
 * is freed either way; RPC_PENDING when it was sent from here. */
static int answer(struct call *c, int code)
{
	/* Every UNAVAILABLE this server answers comes before a commit, or instead of one (a commit
	 * whose outcome is lost is UNKNOWN): the call wrote nothing and may be sent again. */
	if (code == RPC_UNAVAILABLE)
		rpc_mark_retryable(c->rpc);
	enum call_mode mode = c->mode;
	struct rpc_ctx *ctx = c->rpc;
	struct rpc_stream *st = c->stream;
	call_free(c);
	if (mode == CALL_INLINE)
		return code;
	if (st) {
		rpc_stream_finish(st, code);
		rpc_stream_release(st);
	} else {
		rpc_complete(ctx, code);
	}
	return RPC_PENDING;
}

/* The audit writer stored the call's row (status 0) or could not. */
static void audited(void *arg, int status)
{
	struct call *c = arg;
	c->mode = CALL_ASYNC;
	int code = c->code;
	if (status != 0) { /* fail closed: nothing leaves without its row */
		metrics_audit_failure(c->api->metrics);
		code = call_fail(c, RPC_UNAVAILABLE, "the audit log is unavailable");
	}
	answer(c, code);
}

/* The handler's code is final: the audit row it needs, then the answer. */
static int finish(struct call *c, int code)
{
	if (code == RPC_OK && rpc_out_of_memory(c->rpc))
		code = call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	/* The connection goes back to the pool before anything waits. */
	session_close(&c->db);
	if (!policy_audit(c, code))
		return answer(c, code);
	/* A refusal or a failure carries nothing that its row must precede: it is answered now, and
	 * its row written with the next batch (waiting for it would only hold the real reason back
	 * when the audit log is slow: a commit not confirmed would reach its client as the client's
	 * own DEADLINE_EXCEEDED instead of UNKNOWN). */
	if (code != RPC_OK) {
		if (audit_submit(c->api->audit, AUDIT_CALLS, &c->audit, NULL, NULL) != 0)
			metrics_audit_failure(c->api->metrics);
		return answer(c, code);
	}
	c->code = code;
	if (audit_submit(c->api->audit, AUDIT_CALLS, &c->audit, audited, c) == 0)
		return RPC_PENDING; /* the writer owns the call now */
	metrics_audit_failure(c->api->metrics);
	if (code == RPC_OK)
		code = call_fail(c, RPC_UNAVAILABLE, "the audit log is unavailable");
	return answer(c, code);
}

static void job(void *arg)
{
	struct call *c = arg;
	c->mode = CALL_DB;
	/* A call whose client has given up while it queued is not run: it is answered (and
	 * audited) as what it is. */
	if (call_remaining_ms(c) == 0) {
		finish(c, call_fail(c, RPC_DEADLINE_EXCEEDED,
		                    "the deadline passed while the call waited for a database "
		                    "thread"));
		return;
	}
	run(c);
}

/* The call runs again from the start on a database thread. */
static int to_db(struct call *c)
{
	session_close(&c->db);
	if (c->api->jobs == NULL)
		return finish(c, call_fail(c, RPC_UNAVAILABLE, "the database is unavailable"));
	if (workq_submit(c->api->jobs, WORKQ_CALLS, job, c) == 0)
		return RPC_PENDING; /* a database thread owns the call now */
	return finish(c, call_fail(c, RPC_UNAVAILABLE,
	                           "this replica has too many calls waiting for the database; "
	                           "try again"));
}

/* A parked call is woken (its revision came, its time is up, or it looks again). */
static void woken(void *call, void *arg)
{
	(void)arg;
	struct call *c = call;
	c->mode = CALL_ASYNC;
	to_db(c);
}

/* Runs the call from where it stands: the code to answer inline, or RPC_PENDING when another
 * thread owns the call now (or answered it). */
static int run(struct call *c)
{
	c->would_block = false;
	if (!c->authorized) {
		int code = policy_authorize(c, c->req);
		if (c->would_block)
			return to_db(c);
		if (code != RPC_OK)
			return finish(c, code);
		c->authorized = true;
	}
	if (c->mode == CALL_INLINE && !c->policy->inline_ok)
		return to_db(c);
	rpc_clear_message(c->rpc);
	if (c->resp)
		protobuf_c_message_init(c->method->output, c->resp);
	/* A stream's handler keeps its call for as long as the stream is open: the connection that
	 * authenticated it goes back first. */
	if (c->stream)
		session_close(&c->db);
	c->wait_asked = false;
	/* News of a revision heard after this point may wake the call at once if it parks. */
	uint64_t seq = c->api->waits ? waits_seq(c->api->waits) : 0;
	int code = c->stream ? c->method->invoke_stream(c->handlers, c, c->stream)
	                     : c->method->invoke(c->handlers, c, c->req, c->resp);
	if (code == RPC_PENDING) /* a stream's handler took the call over: it is not ours */
		return RPC_PENDING;
	if (c->would_block)
		return to_db(c);
	if (code == CALL_PARK) {
		session_close(&c->db);
		waits_add(c->api->waits, &c->wait, c, c->wait_project_id, c->wait_revision,
		          c->wait_deadline_ms, seq);
		return RPC_PENDING; /* the waits own the call now */
	}
	return finish(c, code);
}

/* A new call: its owner, and its first run on this thread. */
static int begin(struct api *a, struct rpc_ctx *ctx, const coffer_method_desc *m,
                 const void *handlers, const ProtobufCMessage *req, ProtobufCMessage *resp,
                 struct rpc_stream *stream)
{
	struct call *c = call_new(a, ctx, m);
	if (c == NULL)
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	c->policy = policy_of(m); /* none: policy_authorize refuses the call */
	c->handlers = handlers;
	c->req = req;
	c->resp = resp;
	c->stream = stream;
	c->mode = CALL_INLINE;
	return run(c);
}

int api_unary(void *app, struct rpc_ctx *ctx, const coffer_method_desc *m, const void *handlers,
              const ProtobufCMessage *req, ProtobufCMessage *resp)
{
	return begin(app, ctx, m, handlers, req, resp, NULL);
}

int api_stream(void *app, struct rpc_ctx *ctx, const coffer_method_desc *m, const void *handlers,
               const ProtobufCMessage *req, struct rpc_stream *stream)
{
	return begin(app, ctx, m, handlers, req, NULL, stream);
}

struct rpc_stream *api_stream_detach(struct call *c)
{
	struct rpc_stream *st = c->stream;
	c->stream = NULL;
	call_free(c);
	return st;
}

void api_stream_done(struct call *c, int code)
{
	c->mode = CALL_ASYNC;
	struct rpc_stream *st = c->stream;
	c->stream = NULL; /* the stream is over: nothing is sent on it */
	session_close(&c->db);
	if (policy_audit(c, code) &&
	    audit_submit(c->api->audit, AUDIT_CALLS, &c->audit, NULL, NULL) != 0)
		metrics_audit_failure(c->api->metrics);
	call_free(c);
	rpc_stream_release(st);
}

int api_run_start(struct api *a, struct cof_err *e)
{
	if (a->cfg.db_threads <= 0)
		return 0;
	size_t queue = a->cfg.db_queue > 0 ? (size_t)a->cfg.db_queue : 10000;
	if (workq_new(a->cfg.db_threads, queue, &a->jobs) != 0 ||
	    waits_new(woken, a, &a->waits) != 0)
		return cof_err_set(e, COF_EINTERNAL, "cannot start the database threads");
	return 0;
}

void api_run_stop(struct api *a)
{
	/* Parked calls are woken (into jobs that answer them: nothing parks any more), then the
	 * jobs drain, then the waits stop. */
	atomic_store(&a->draining, true);
	if (a->waits)
		waits_wake_all(a->waits);
	workq_free(a->jobs);
	a->jobs = NULL;
	waits_free(a->waits);
	a->waits = NULL;
}
