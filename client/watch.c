/*
 * watch.c - coffer_watch: a WatchSecrets stream that outlives its connections (see
 * coffer/client.h). One completion queue per watch; coffer_watch_next drives it. A stream that
 * ends for any reason but a refusal is opened again after a backoff (exponential, full jitter,
 * at most 2 s) from the last revision seen, so the server sends everything after it; a stream that
 * is silent for longer than SILENT_MS (the server's heartbeats stopped: a dead peer) is cancelled
 * and opened again.
 */
#include "coffer/client.h"
#include "coffer_client_internal.h"
#include "coffer_shared.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "coffer/v1/secrets.pb-c.h"

/* A stream that says nothing for this long is taken for dead (the server's heartbeats come
 * every 15 s by default). */
#define SILENT_MS   60000
#define BACKOFF_MIN 100
#define BACKOFF_MAX 2000

enum { TAG_START, TAG_MESSAGE, TAG_STATUS };

struct coffer_watch {
	coffer_channel *ch; /* the channel (not owned) */
	char *project, *environment;
	int version;
	char **names; /* copies */
	size_t n_names;
	int64_t revision; /* last revision seen; 0: none yet */
	/* the stream now, if any */
	grpc_completion_queue *cq; /* the watch's queue */
	grpc_call *call;           /* the stream, or NULL */
	grpc_metadata auth;        /* authorization */
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
	grpc_byte_buffer *send;          /* the request */
	grpc_byte_buffer *recv;          /* the message being read */
	int outstanding;                 /* batches not completed */
	bool ended;                      /* the status arrived */
	int64_t last_heard_ms;           /* monotonic: the last message */
	int attempt;                     /* reconnections since the last message */
	int64_t next_try_ms;             /* monotonic: when to open again */
	char tags[3];                    /* their addresses are the tags */
	Coffer__V1__SecretsChange *last; /* the change handed out last */
};

static gpr_timespec at_ms(int64_t ms)
{
	int64_t d = ms - coffer_mono_ms();
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	                    gpr_time_from_millis(d > 0 ? d : 0, GPR_TIMESPAN));
}

int coffer_watch_open(coffer_channel *ch, const char *project, const char *environment,
                      coffer_version version, const char *const *names, size_t n_names,
                      int64_t from_revision, coffer_watch **out, coffer_error *err)
{
	*out = NULL;
	if (ch == NULL || project == NULL || environment == NULL)
		return coffer__fail(err, COFFER_INVALID_ARGUMENT,
		                    "a channel, project and environment "
		                    "are required");
	coffer_watch *w = calloc(1, sizeof(*w));
	if (w == NULL || (w->project = strdup(project)) == NULL ||
	    (w->environment = strdup(environment)) == NULL ||
	    (n_names && (w->names = calloc(n_names, sizeof(char *))) == NULL))
		goto oom;
	for (size_t i = 0; i < n_names; i++) {
		if ((w->names[i] = strdup(names[i])) == NULL)
			goto oom;
		w->n_names++;
	}
	w->ch = ch;
	w->version = version;
	w->revision = from_revision > 0 ? from_revision : 0;
	w->cq = grpc_completion_queue_create_for_next(NULL);
	*out = w;
	return 0;
oom:
	coffer_watch_close(w);
	return coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
}

/* Opens the stream from the last revision seen. */
static int start(coffer_watch *w, coffer_error *err)
{
	Coffer__V1__WatchSecretsRequest req = COFFER__V1__WATCH_SECRETS_REQUEST__INIT;
	req.project = w->project;
	req.environment = w->environment;
	req.version = (Coffer__V1__Version)w->version;
	req.names = w->names;
	req.n_names = w->n_names;
	req.from_revision = w->revision;
	size_t len = protobuf_c_message_get_packed_size(&req.base);
	grpc_slice slice = grpc_slice_malloc(len);
	protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(slice));
	w->send = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	w->call = grpc_channel_create_call(
	        coffer__grpc_channel(w->ch), NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
	        grpc_slice_from_static_string("/coffer.v1.Secrets/WatchSecrets"), NULL,
	        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_metadata_array_init(&w->initial);
	grpc_metadata_array_init(&w->trailing);
	w->details = grpc_empty_slice();
	w->ended = false;
	w->last_heard_ms = coffer_mono_ms();
	const char *auth = coffer__authorization(w->ch);
	memset(&w->auth, 0, sizeof(w->auth));
	if (auth) {
		w->auth.key = grpc_slice_from_static_string("authorization");
		w->auth.value = grpc_slice_from_copied_string(auth);
	}
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = auth ? 1 : 0;
	ops[0].data.send_initial_metadata.metadata = auth ? &w->auth : NULL;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = w->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &w->initial;
	grpc_op st;
	memset(&st, 0, sizeof(st));
	st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	st.data.recv_status_on_client.trailing_metadata = &w->trailing;
	st.data.recv_status_on_client.status = &w->status;
	st.data.recv_status_on_client.status_details = &w->details;
	grpc_op msg;
	memset(&msg, 0, sizeof(msg));
	msg.op = GRPC_OP_RECV_MESSAGE;
	msg.data.recv_message.recv_message = &w->recv;
	if (grpc_call_start_batch(w->call, ops, 4, &w->tags[TAG_START], NULL) != GRPC_CALL_OK ||
	    grpc_call_start_batch(w->call, &st, 1, &w->tags[TAG_STATUS], NULL) != GRPC_CALL_OK ||
	    grpc_call_start_batch(w->call, &msg, 1, &w->tags[TAG_MESSAGE], NULL) != GRPC_CALL_OK)
		return coffer__fail(err, COFFER_INTERNAL, "cannot start the watch");
	w->outstanding = 3;
	return 0;
}

/* Frees the stream once every batch has completed. */
static void drop_stream(coffer_watch *w)
{
	if (w->call == NULL)
		return;
	grpc_call_cancel(w->call, NULL);
	while (w->outstanding > 0) {
		grpc_event ev =
		        grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			w->outstanding--;
	}
	if (w->recv)
		grpc_byte_buffer_destroy(w->recv);
	w->recv = NULL;
	grpc_byte_buffer_destroy(w->send);
	w->send = NULL;
	if (coffer__authorization(w->ch))
		grpc_slice_unref(w->auth.value);
	grpc_metadata_array_destroy(&w->initial);
	grpc_metadata_array_destroy(&w->trailing);
	grpc_slice_unref(w->details);
	grpc_call_unref(w->call);
	w->call = NULL;
}

/* The stream ended: 0 to open it again after a backoff, or a final refusal. */
static int ended(coffer_watch *w, coffer_error *err)
{
	int code = (int)w->status;
	char *text = grpc_slice_to_c_string(w->details);
	coffer_error final = {0};
	int rc = 0;
	switch (code) {
	case COFFER_UNAUTHENTICATED:
	case COFFER_PERMISSION_DENIED:
	case COFFER_NOT_FOUND:
	case COFFER_INVALID_ARGUMENT:
	case COFFER_UNIMPLEMENTED:
	case COFFER_FAILED_PRECONDITION:
		rc = coffer__fail(&final, code, "%s", text);
		break;
	case COFFER_RESOURCE_EXHAUSTED:
		/* Too many watches is final; a client cut off for not keeping up resumes. */
		if (strstr(text, "resume") == NULL)
			rc = coffer__fail(&final, code, "%s", text);
		break;
	default:
		break;
	}
	gpr_free(text);
	drop_stream(w);
	if (rc) {
		if (err)
			*err = final;
		return rc;
	}
	int64_t cap = (int64_t)BACKOFF_MIN << (w->attempt < 5 ? w->attempt : 5);
	if (cap > BACKOFF_MAX)
		cap = BACKOFF_MAX;
	w->next_try_ms = coffer_mono_ms() + coffer_random_below(cap) + 1;
	w->attempt++;
	return 0;
}

/* A message arrived: it is unpacked (NULL: it did not parse), and the next one asked for. */
static Coffer__V1__SecretsChange *take_message(coffer_watch *w)
{
	grpc_byte_buffer_reader reader;
	grpc_byte_buffer_reader_init(&reader, w->recv);
	grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	grpc_byte_buffer_destroy(w->recv);
	w->recv = NULL;
	Coffer__V1__SecretsChange *m = coffer__v1__secrets_change__unpack(
	        NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &w->recv;
	if (grpc_call_start_batch(w->call, &op, 1, &w->tags[TAG_MESSAGE], NULL) == GRPC_CALL_OK)
		w->outstanding++;
	w->last_heard_ms = coffer_mono_ms();
	w->attempt = 0;
	return m;
}

/* One completed batch of the stream: 1 with *change (a change to tell), 0 to go on, or a final
 * refusal's error. */
static int on_event(coffer_watch *w, const grpc_event *ev, coffer_change *change, coffer_error *err)
{
	w->outstanding--;
	if (ev->tag == &w->tags[TAG_STATUS]) {
		w->ended = true;
		return ended(w, err);
	}
	if (ev->tag != &w->tags[TAG_MESSAGE] || !ev->success || w->recv == NULL)
		return 0; /* the start, or the stream is ending: its status follows */
	Coffer__V1__SecretsChange *m = take_message(w);
	if (m == NULL)
		return 0;
	if (m->revision > w->revision)
		w->revision = m->revision;
	if (m->heartbeat && !m->resync && m->n_changed == 0) {
		protobuf_c_message_free_unpacked(&m->base, NULL);
		return 0;
	}
	w->last = m;
	change->revision = m->revision;
	change->changed = (const char *const *)m->changed;
	change->n_changed = m->n_changed;
	change->resync = m->resync;
	return 1;
}

int coffer_watch_next(coffer_watch *w, int timeout_ms, coffer_change *change, coffer_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
	memset(change, 0, sizeof(*change));
	if (w->last) {
		protobuf_c_message_free_unpacked(&w->last->base, NULL);
		w->last = NULL;
	}
	int64_t until = timeout_ms < 0 ? INT64_MAX : coffer_mono_ms() + timeout_ms;
	for (;;) {
		int64_t t = coffer_mono_ms();
		if (w->call == NULL) { /* between two streams: the backoff, then a new one */
			if (t < w->next_try_ms) {
				if (t >= until)
					return 0;
				gpr_sleep_until(
				        at_ms(w->next_try_ms < until ? w->next_try_ms : until));
				continue;
			}
			if (start(w, err) != 0) {
				drop_stream(w);
				return -1;
			}
		}
		if (t - w->last_heard_ms > SILENT_MS) { /* a dead peer: start over */
			w->status = GRPC_STATUS_UNAVAILABLE;
			drop_stream(w);
			w->next_try_ms = 0;
			continue;
		}
		int64_t wake = w->last_heard_ms + SILENT_MS + 1;
		grpc_event ev =
		        grpc_completion_queue_next(w->cq, at_ms(until < wake ? until : wake), NULL);
		if (ev.type == GRPC_QUEUE_TIMEOUT && coffer_mono_ms() >= until)
			return 0;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		int rc = on_event(w, &ev, change, err);
		if (rc != 0)
			return rc;
	}
}

int64_t coffer_watch_revision(const coffer_watch *w)
{
	return w ? w->revision : 0;
}

void coffer_watch_close(coffer_watch *w)
{
	if (w == NULL)
		return;
	drop_stream(w);
	if (w->cq) {
		grpc_completion_queue_shutdown(w->cq);
		while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		               .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(w->cq);
	}
	if (w->last)
		protobuf_c_message_free_unpacked(&w->last->base, NULL);
	for (size_t i = 0; i < w->n_names; i++)
		free(w->names[i]);
	free(w->names);
	free(w->project);
	free(w->environment);
	free(w);
}
