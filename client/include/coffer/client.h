/*
 * coffer/client.h - libcoffer, the C client of Coffer.
 *
 * The high-level API is what a runtime needs at startup: open a client, resolve the effective
 * secrets of (project, environment, version) into a snapshot, read values or render
 * `{secret.NAME}` templates from it, free it. Every RPC is also available as a typed blocking call
 * (coffer_v1_<service>_<method>, declared in the generated headers included below) on the channel
 * returned by coffer_client_channel.
 *
 * Every fallible function returns 0 on success and a negative value on failure, and fills the
 * caller's coffer_error with the gRPC status code and a message. Calls that fail with UNAVAILABLE
 * are retried with exponential backoff and jitter within the deadline; no other code is retried.
 * Every free function accepts NULL. Pages: docs/client/.
 */
#ifndef COFFER_CLIENT_H
#define COFFER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "coffer/call.h"
#include "coffer/v1/access.stub.h"
#include "coffer/v1/environments.stub.h"
#include "coffer/v1/projects.stub.h"
#include "coffer/v1/secrets.stub.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum coffer_version {
	COFFER_VERSION_DRAFT = 1, /* what is being edited */
	COFFER_VERSION_LIVE = 2,  /* what is published and serving */
} coffer_version;

typedef struct coffer_options {
	const char *target;  /* host:port of cofferd; default $COFFER_ADDR or 127.0.0.1:50051 */
	const char *token;   /* bearer token; default $COFFER_TOKEN or none */
	const char *ca_file; /* PEM CA bundle to verify the server (TLS); default $COFFER_CA_FILE */
	const char *cert_file; /* client certificate (PEM) for mTLS; default $COFFER_CERT_FILE */
	const char *key_file;  /* its private key (PEM); default $COFFER_KEY_FILE */
	int timeout_ms;        /* deadline of each call, retries included; default 10000 */
	int max_retries;       /* retries after UNAVAILABLE; default 4 */
} coffer_options;

typedef struct coffer_client coffer_client;
typedef struct coffer_snapshot coffer_snapshot;

/* Fills opts with the defaults above (reading COFFER_ADDR, COFFER_TOKEN, COFFER_CA_FILE). */
void coffer_options_init(coffer_options *opts);
/* Opens a client. The connection is made on the first call. */
int coffer_client_new(const coffer_options *opts, coffer_client **out, coffer_error *err);
void coffer_client_free(coffer_client *client);
/* The channel for the typed calls; owned by the client. */
coffer_channel *coffer_client_channel(coffer_client *client);

/* Resolves every secret of (project, environment, version) into a new snapshot. */
int coffer_resolve(coffer_client *client, const char *project, const char *environment,
                   coffer_version version, coffer_snapshot **out, coffer_error *err);
/* The value of secret `name`, or NULL when the snapshot has no such secret. Owned by the snapshot.
 */
const char *coffer_snapshot_get(const coffer_snapshot *snap, const char *name);
/* How many secrets the snapshot holds. */
size_t coffer_snapshot_count(const coffer_snapshot *snap);
/* The name of secret i (0 <= i < count), in name order; NULL when i is out of range. */
const char *coffer_snapshot_name(const coffer_snapshot *snap, size_t i);
/* The project revision the snapshot was read at. */
int64_t coffer_snapshot_revision(const coffer_snapshot *snap);
/* Renders `{secret.NAME}` references in tmpl; `{{` is a literal `{`. *out is malloc'd (free it
 * with free). An unknown name fails with NOT_FOUND and a message that names it; a reference that
 * is not closed fails with INVALID_ARGUMENT. */
int coffer_snapshot_render(const coffer_snapshot *snap, const char *tmpl, char **out,
                           coffer_error *err);
/* Frees a snapshot, wiping its values. */
void coffer_snapshot_free(coffer_snapshot *snap);

#ifdef __cplusplus
}
#endif

#endif
