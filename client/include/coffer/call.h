/*
 * coffer/call.h - the low-level client: a channel to cofferd and one blocking unary call.
 *
 * The generated typed stubs (`coffer_v1_projects_get_project` and the rest, in the *.stub.h
 * headers) are thin wrappers over coffer__call_unary. Every fallible function returns 0 on success
 * and a negative value on failure, with the gRPC status code and message in a coffer_error.
 */
#ifndef COFFER_CALL_H
#define COFFER_CALL_H

#include <stdint.h>

#include "coffer_rpc_meta.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coffer_error {
	int code;          /* gRPC status code; 0 when there was no error */
	char message[512]; /* the server's (or the library's) message */
} coffer_error;

typedef struct coffer_channel coffer_channel;

typedef struct coffer_channel_options {
	const char *target;    /* host:port */
	const char *token;     /* bearer token sent as `authorization`, or NULL */
	const char *ca_file;   /* PEM CA bundle for TLS, or NULL for plaintext */
	const char *cert_file; /* client certificate (PEM) for mTLS, or NULL */
	const char *key_file;  /* its private key (PEM) */
	int timeout_ms;        /* deadline of each call, retries included; 0: none */
	int max_retries;       /* further attempts after UNAVAILABLE (never after other codes) */
	int retry_base_ms; /* first backoff (default 50); doubles per attempt up to 2 s, full jitter
	                    */
} coffer_channel_options;

/* Opens a channel (lazily connected). */
int coffer_channel_new(const coffer_channel_options *opts, coffer_channel **out, coffer_error *err);
/* Closes a channel. NULL-safe. */
void coffer_channel_free(coffer_channel *ch);
/* One unary call of method m, retried on UNAVAILABLE with exponential backoff and full jitter
 * while attempts and the deadline last. On success *resp is a new message (free it with
 * protobuf_c_message_free_unpacked(*resp, NULL)). */
int coffer__call_unary(coffer_channel *ch, const coffer_method_desc *m, const ProtobufCMessage *req,
                       ProtobufCMessage **resp, coffer_error *err);
/* "NOT_FOUND" for 5, and so on. */
const char *coffer_code_name(int code);

#ifdef __cplusplus
}
#endif

#endif
