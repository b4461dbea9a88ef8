/* call.c - channels and blocking unary calls over the gRPC core API (see coffer/client.h). */
#include "coffer/client.h"
#include "coffer_client_internal.h"
#include "coffer_shared.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/sync.h>
#include <grpc/support/time.h>

struct coffer_channel {
	grpc_channel *channel; /* the core channel */
	char *authorization;   /* "Bearer <token>", or NULL */
	int timeout_ms;        /* per-call deadline, 0: none */
	int max_retries;       /* attempts after UNAVAILABLE */
	int retry_base_ms;     /* first backoff */
};

/* The public enum coffer_code is the status table's gRPC codes. */
#define STATUS(code, name, http, connect) _Static_assert(COFFER_##name == code, #name);
#include "coffer_status.def"

const char *coffer_code_name(int code)
{
	return coffer_status_name(code);
}

int coffer__fail(coffer_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		err->code = code;
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return -1;
}

void coffer__wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (v && n--)
		*v++ = 0;
}

/* The largest answer the library takes. */
#define COFFER_MAX_RESPONSE_BYTES (64 << 20)

/* The CA roots of the system (Debian's ca-certificates). */
#define SYSTEM_ROOTS "/etc/ssl/certs/ca-certificates.crt"

bool coffer__loopback(const char *target)
{
	const char *host = target;
	for (const char *scheme = strstr(target, ":///"); scheme; scheme = NULL)
		host = scheme + 4; /* dns:///host:port */
	if (strncmp(host, "ipv4:", 5) == 0 || strncmp(host, "ipv6:", 5) == 0)
		host += 5;
	if (strncmp(target, "unix:", 5) == 0)
		return true;
	return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0 ||
	       strcmp(host, "localhost") == 0 || strncmp(host, "[::1]", 5) == 0;
}

/* Certificates and keys are small; anything larger is not one. */
#define MAX_PEM_BYTES (1 << 20)

static char *read_file(const char *path)
{
	return coffer_read_file(path, MAX_PEM_BYTES, NULL);
}

int coffer_channel_new(const coffer_channel_options *opts, coffer_channel **out, coffer_error *err)
{
	*out = NULL;
	if (opts == NULL || opts->target == NULL || *opts->target == '\0')
		return coffer__fail(err, COFFER_INVALID_ARGUMENT, "no target address given");
	coffer_channel *ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
	grpc_init();
	/* TLS unless the caller asks for plaintext or the server is on this host: a token must not
	 * cross a network in clear by default. Without a CA file, the system's roots verify it. */
	bool has_ca = opts->ca_file && *opts->ca_file;
	bool tls = has_ca || !(opts->plaintext || coffer__loopback(opts->target));
	grpc_channel_credentials *creds;
	if (tls) {
		char *pem = read_file(has_ca ? opts->ca_file : SYSTEM_ROOTS);
		bool mtls = opts->cert_file && *opts->cert_file;
		char *cert = mtls ? read_file(opts->cert_file) : NULL;
		char *key = mtls && opts->key_file ? read_file(opts->key_file) : NULL;
		if ((has_ca && pem == NULL) || (mtls && (cert == NULL || key == NULL))) {
			free(pem);
			free(cert);
			free(key);
			free(ch);
			grpc_shutdown();
			return coffer__fail(
			        err, COFFER_INVALID_ARGUMENT,
			        "cannot read the CA file %s or the client certificate or key",
			        has_ca ? opts->ca_file : SYSTEM_ROOTS);
		}
		/* pem NULL: gRPC's own default roots */
		grpc_ssl_pem_key_cert_pair pair = {key, cert};
		creds = grpc_ssl_credentials_create(pem, mtls ? &pair : NULL, NULL, NULL);
		free(pem);
		free(cert);
		if (key) {
			coffer__wipe(key, strlen(key));
			free(key);
		}
	} else {
		creds = grpc_insecure_credentials_create();
	}
	/* A resolve may carry a project's every value (16 MiB at most on the server): more than
	 * gRPC's default of 4 MiB. */
	grpc_arg arg = {.type = GRPC_ARG_INTEGER,
	                .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
	                .value.integer = COFFER_MAX_RESPONSE_BYTES};
	grpc_channel_args args = {1, &arg};
	ch->channel = grpc_channel_create(opts->target, creds, &args);
	grpc_channel_credentials_release(creds);
	ch->timeout_ms = opts->timeout_ms;
	ch->max_retries = opts->max_retries > 0 ? opts->max_retries : 0;
	ch->retry_base_ms = opts->retry_base_ms > 0 ? opts->retry_base_ms : 50;
	if (opts->token && *opts->token) {
		size_t n = strlen(opts->token) + 8;
		ch->authorization = malloc(n);
		if (ch->authorization)
			snprintf(ch->authorization, n, "Bearer %s", opts->token);
	}
	*out = ch;
	return 0;
}

void coffer_channel_free(coffer_channel *ch)
{
	if (ch == NULL)
		return;
	grpc_channel_destroy(ch->channel);
	free(ch->authorization);
	free(ch);
	grpc_shutdown();
}

/* Whether trailing metadata carries the server's "nothing was written" mark. */
static bool server_says_retryable(const grpc_metadata_array *md)
{
	static const char key[] = "coffer-retryable";
	for (size_t i = 0; i < md->count; i++)
		if (GRPC_SLICE_LENGTH(md->metadata[i].key) == sizeof(key) - 1 &&
		    memcmp(GRPC_SLICE_START_PTR(md->metadata[i].key), key, sizeof(key) - 1) == 0)
			return true;
	return false;
}

bool coffer__retry_allowed(const coffer_method_desc *m, int code, bool server_retryable)
{
	/* UNAVAILABLE only: UNKNOWN (a lost commit) and every refusal are final. A read may be
	 * repeated whatever broke; a write only when the server said it wrote nothing, because an
	 * UNAVAILABLE from the transport may come after the server committed. */
	return code == COFFER_UNAVAILABLE && (m->idempotent || server_retryable);
}

/* What one unary call sends and receives, all in one batch. */
struct unary {
	grpc_metadata auth;           /* authorization, when the channel has a token */
	size_t n_md;                  /* 0 or 1 */
	grpc_byte_buffer *send;       /* the packed request */
	grpc_metadata_array initial;  /* the server's initial metadata */
	grpc_metadata_array trailing; /* and trailing metadata */
	grpc_byte_buffer *recv;       /* the response, or NULL */
	grpc_status_code status;      /* the status */
	grpc_slice details;           /* and its message */
};

/* The request packed into a byte buffer (the packing is wiped: requests carry values); NULL on
 * OOM. */
static grpc_byte_buffer *pack_request(const ProtobufCMessage *req)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(req, buf);
	grpc_slice slice = grpc_slice_from_copied_buffer((const char *)buf, len);
	coffer__wipe(buf, len);
	free(buf);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

/* The batch: metadata, message and close out; metadata, message and status in. */
static void unary_ops(struct unary *u, grpc_op ops[6])
{
	memset(ops, 0, 6 * sizeof(*ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = u->n_md;
	ops[0].data.send_initial_metadata.metadata = u->n_md ? &u->auth : NULL;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = u->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &u->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing;
	ops[5].data.recv_status_on_client.status = &u->status;
	ops[5].data.recv_status_on_client.status_details = &u->details;
}

/* What the server answered: 0 and *resp (unpacked as m's output), or the error (its status and
 * message, and whether the server said nothing was written). */
static int unary_answer(const coffer_method_desc *m, struct unary *u, ProtobufCMessage **resp,
                        bool *retryable, coffer_error *err)
{
	if (u->status != GRPC_STATUS_OK) {
		*retryable = server_says_retryable(&u->trailing);
		char *text = grpc_slice_to_c_string(u->details);
		int rc = coffer__fail(err, (int)u->status, "%s", text);
		gpr_free(text);
		return rc;
	}
	if (u->recv == NULL)
		return coffer__fail(err, COFFER_INTERNAL, "the server sent no message");
	grpc_byte_buffer_reader reader;
	grpc_byte_buffer_reader_init(&reader, u->recv);
	grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	*resp = protobuf_c_message_unpack(m->output, NULL, GRPC_SLICE_LENGTH(all),
	                                  GRPC_SLICE_START_PTR(all));
	coffer__wipe(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
	grpc_slice_unref(all);
	if (*resp == NULL)
		return coffer__fail(err, COFFER_INTERNAL, "the response did not parse as %s",
		                    m->output->name);
	return 0;
}

static void unary_free(struct unary *u)
{
	if (u->n_md)
		grpc_slice_unref(u->auth.value);
	grpc_slice_unref(u->details);
	grpc_metadata_array_destroy(&u->initial);
	grpc_metadata_array_destroy(&u->trailing);
	if (u->recv)
		grpc_byte_buffer_destroy(u->recv);
	grpc_byte_buffer_destroy(u->send);
}

/* One attempt at a unary call, on a queue of its own, waited for until deadline. */
static int call_once(coffer_channel *ch, const coffer_method_desc *m, const ProtobufCMessage *req,
                     gpr_timespec deadline, ProtobufCMessage **resp, bool *retryable,
                     coffer_error *err)
{
	*resp = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	struct unary u = {.status = GRPC_STATUS_UNKNOWN, .details = grpc_empty_slice()};
	if ((u.send = pack_request(req)) == NULL)
		return coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
	if (ch->authorization) {
		u.auth.key = grpc_slice_from_static_string("authorization");
		u.auth.value = grpc_slice_from_copied_string(ch->authorization);
		u.n_md = 1;
	}
	grpc_metadata_array_init(&u.initial);
	grpc_metadata_array_init(&u.trailing);
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_call *call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
	                                           grpc_slice_from_static_string(m->path), NULL,
	                                           deadline, NULL);
	grpc_op ops[6];
	unary_ops(&u, ops);
	int rc;
	if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
		rc = coffer__fail(err, COFFER_INTERNAL, "cannot start the call");
	} else {
		grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		rc = unary_answer(m, &u, resp, retryable, err);
	}
	unary_free(&u);
	grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
	               .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return rc;
}

/* The longest wait between two attempts. */
#define MAX_BACKOFF_MS 2000

struct grpc_channel *coffer__grpc_channel(coffer_channel *ch)
{
	return ch->channel;
}

const char *coffer__authorization(const coffer_channel *ch)
{
	return ch->authorization;
}

int coffer__call_unary(coffer_channel *ch, const coffer_method_desc *m, const ProtobufCMessage *req,
                       ProtobufCMessage **resp, coffer_error *err)
{
	gpr_timespec deadline =
	        ch->timeout_ms > 0
	                ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	                               gpr_time_from_millis(ch->timeout_ms, GPR_TIMESPAN))
	                : gpr_inf_future(GPR_CLOCK_MONOTONIC);
	coffer_error own;
	if (err == NULL)
		err = &own;
	for (int attempt = 0;; attempt++) {
		bool server_retryable = false;
		int rc = call_once(ch, m, req, deadline, resp, &server_retryable, err);
		if (rc == 0 || !coffer__retry_allowed(m, err->code, server_retryable) ||
		    attempt >= ch->max_retries)
			return rc;
		int64_t cap = (int64_t)ch->retry_base_ms << (attempt < 16 ? attempt : 16);
		if (cap > MAX_BACKOFF_MS)
			cap = MAX_BACKOFF_MS;
		int64_t wait = coffer_random_below(cap) + 1;
		gpr_timespec wake = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		                                 gpr_time_from_millis(wait, GPR_TIMESPAN));
		if (gpr_time_cmp(wake, deadline) >= 0)
			return rc; /* no time left for another attempt */
		gpr_sleep_until(wake);
	}
}
