/*
 * coffer/client.h - libcoffer, the C client of Coffer.
 *
 * The high-level API is what a runtime needs at startup: open a client, resolve the effective
 * secrets of (project, environment, version) into a snapshot, read values or render
 * `{secret.NAME}` templates from it, free it. Every RPC is also available as a typed blocking call
 * (coffer_v1_<service>_<method>, declared in the generated headers included at the end) on a
 * channel: the client's (coffer_client_channel) or one of your own (coffer_channel_new).
 *
 * Every fallible function returns 0 on success and a negative value on failure, and fills the
 * caller's coffer_error with a status code (enum coffer_code) and a message, as hiredis keeps
 * `err` and `errstr`. Calls that fail with COFFER_UNAVAILABLE are retried with exponential backoff
 * and jitter within the deadline; no other code is retried. Every free function accepts NULL.
 * The library exports only the functions below, the typed calls and protobuf-c's message types.
 * Pages: docs/client/.
 */
#ifndef COFFER_CLIENT_H
#define COFFER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions libcoffer exports (it is built with hidden visibility). */
#define COFFER_API __attribute__((visibility("default")))

/* Status codes: gRPC's, by name. The server's codes are documented in docs/api.md. */
typedef enum coffer_code {
	COFFER_OK = 0,
	COFFER_CANCELLED = 1,
	COFFER_UNKNOWN = 2,
	COFFER_INVALID_ARGUMENT = 3,
	COFFER_DEADLINE_EXCEEDED = 4,
	COFFER_NOT_FOUND = 5,
	COFFER_ALREADY_EXISTS = 6,
	COFFER_PERMISSION_DENIED = 7,
	COFFER_RESOURCE_EXHAUSTED = 8,
	COFFER_FAILED_PRECONDITION = 9,
	COFFER_ABORTED = 10,
	COFFER_OUT_OF_RANGE = 11,
	COFFER_UNIMPLEMENTED = 12,
	COFFER_INTERNAL = 13,
	COFFER_UNAVAILABLE = 14,
	COFFER_DATA_LOSS = 15,
	COFFER_UNAUTHENTICATED = 16,
} coffer_code;

typedef struct coffer_error {
	int code;          /* enum coffer_code; COFFER_OK when there was no error */
	char message[512]; /* the server's (or the library's) message */
} coffer_error;

/* "NOT_FOUND" for COFFER_NOT_FOUND, and so on; "UNKNOWN" for anything else. */
COFFER_API const char *coffer_code_name(int code);

/* ---- channels: a connection to cofferd and its call settings ---- */

typedef struct coffer_channel coffer_channel;

typedef struct coffer_channel_options {
	const char *target;    /* host:port */
	const char *token;     /* bearer token sent as `authorization`, or NULL */
	const char *ca_file;   /* PEM CA bundle to verify the server; NULL: the system's roots */
	const char *cert_file; /* client certificate (PEM) for mTLS, or NULL */
	const char *key_file;  /* its private key (PEM) */
	int timeout_ms;        /* deadline of each call, retries included; 0: none */
	int max_retries;       /* further attempts after UNAVAILABLE (never after other codes) */
	int retry_base_ms; /* first backoff (default 50); doubles per attempt up to 2 s, full jitter
	                    */
	int plaintext; /* nonzero: no TLS. Otherwise TLS is used for every target not on this host
	                  (a loopback address, localhost, unix:) */
} coffer_channel_options;

/* Opens a channel (lazily connected). */
COFFER_API int coffer_channel_new(const coffer_channel_options *opts, coffer_channel **out,
                                  coffer_error *err);
/* Closes a channel. NULL-safe. */
COFFER_API void coffer_channel_free(coffer_channel *ch);

/* ---- the client: resolve and snapshots ---- */

typedef enum coffer_version {
	COFFER_VERSION_DRAFT = 1, /* what is being edited */
	COFFER_VERSION_LIVE = 2,  /* what is published and serving */
} coffer_version;

typedef struct coffer_options {
	const char *target;    /* host:port of cofferd; default $COFFER_ADDR or 127.0.0.1:50051 */
	const char *token;     /* bearer token; default $COFFER_TOKEN or none */
	const char *ca_file;   /* PEM CA bundle to verify the server; default $COFFER_CA_FILE, else
	                          the   system's roots */
	const char *cert_file; /* client certificate (PEM) for mTLS; default $COFFER_CERT_FILE */
	const char *key_file;  /* its private key (PEM); default $COFFER_KEY_FILE */
	int timeout_ms;        /* deadline of each call, retries included; default 10000 */
	int max_retries;       /* retries after UNAVAILABLE; default 4 */
	int plaintext; /* nonzero: no TLS even off this host; default $COFFER_PLAINTEXT (1 or true)
	                */
} coffer_options;

typedef struct coffer_client coffer_client;
typedef struct coffer_snapshot coffer_snapshot;

/* Fills opts with the defaults above (reading COFFER_ADDR, COFFER_TOKEN, COFFER_CA_FILE,
 * COFFER_CERT_FILE, COFFER_KEY_FILE, COFFER_PLAINTEXT). */
COFFER_API void coffer_options_init(coffer_options *opts);
/* Opens a client. The connection is made on the first call. */
COFFER_API int coffer_client_new(const coffer_options *opts, coffer_client **out,
                                 coffer_error *err);
COFFER_API void coffer_client_free(coffer_client *client);
/* The channel for the typed calls; owned by the client. */
COFFER_API coffer_channel *coffer_client_channel(coffer_client *client);

/* Resolves every secret of (project, environment, version) into a new snapshot. */
COFFER_API int coffer_resolve(coffer_client *client, const char *project, const char *environment,
                              coffer_version version, coffer_snapshot **out, coffer_error *err);
/* The value of secret `name`, or NULL when the snapshot has no such secret. Owned by the snapshot.
 */
COFFER_API const char *coffer_snapshot_get(const coffer_snapshot *snap, const char *name);
/* How many secrets the snapshot holds. */
COFFER_API size_t coffer_snapshot_count(const coffer_snapshot *snap);
/* The name of secret i (0 <= i < count), in name order; NULL when i is out of range. */
COFFER_API const char *coffer_snapshot_name(const coffer_snapshot *snap, size_t i);
/* The project revision the snapshot was read at. */
COFFER_API int64_t coffer_snapshot_revision(const coffer_snapshot *snap);
/* Renders `{secret.NAME}` references in tmpl; `{{` is a literal `{`. *out is malloc'd (free it
 * with free). An unknown name fails with COFFER_NOT_FOUND and a message that names it; a
 * reference that is not closed fails with COFFER_INVALID_ARGUMENT. */
COFFER_API int coffer_snapshot_render(const coffer_snapshot *snap, const char *tmpl, char **out,
                                      coffer_error *err);
/* Frees a snapshot, wiping its values. */
COFFER_API void coffer_snapshot_free(coffer_snapshot *snap);
/* When a snapshot read from a fallback file was written (Unix seconds); 0 for one the server
 * answered. */
COFFER_API int64_t coffer_snapshot_time(const coffer_snapshot *snap);

/* ---- fallback snapshots: starting while cofferd cannot be reached ---- */

typedef struct coffer_fallback {
	const char *path;            /* the snapshot file (written atomically, mode 0600) */
	const char *passphrase_file; /* the key from this file's passphrase (Argon2id), so that a
	                                snapshot made elsewhere opens here; NULL: from the token */
	int64_t max_age_seconds;     /* an older snapshot is not used; 0: any age */
	int only;                    /* nonzero: read the snapshot, never ask the server */
} coffer_fallback;

/* What a snapshot file says it holds (its header, read without the key: nothing in it is
 * secret; it is checked when the snapshot is opened). */
typedef struct coffer_fallback_info {
	char project[129], environment[129];
	coffer_version version;
	int64_t revision; /* the project revision it holds */
	int64_t written;  /* when it was written, Unix seconds */
} coffer_fallback_info;
COFFER_API int coffer_fallback_describe(const char *path, coffer_fallback_info *info,
                                        coffer_error *err);

/* coffer_resolve with a fallback (fb NULL: none). After each answer from the server, the snapshot
 * is sealed into fb->path (XChaCha20-Poly1305; the file's header — project, environment, version,
 * revision, time — is bound to it). When the server cannot be reached (UNAVAILABLE,
 * DEADLINE_EXCEEDED) the snapshot is read instead and *from_fallback is set; when it refuses the
 * token (UNAUTHENTICATED, PERMISSION_DENIED) the file is deleted and the refusal returned. A
 * snapshot of another (project, environment, version), changed, or sealed with another key does
 * not open. Format: docs/client/coffer_resolve_fallback.md. */
COFFER_API int coffer_resolve_fallback(coffer_client *client, const char *project,
                                       const char *environment, coffer_version version,
                                       const coffer_fallback *fb, coffer_snapshot **out,
                                       int *from_fallback, coffer_error *err);

/* ---- watching: a change the moment it commits ---- */

typedef struct coffer_watch coffer_watch;

/* What changed in the watched (project, environment, version); never a value. */
typedef struct coffer_change {
	int64_t revision;           /* the revision this change brings the watcher to */
	const char *const *changed; /* names whose value or visibility changed (added, removed) */
	size_t n_changed;           /* how many */
	int resync;                 /* nonzero: what changed is not known; resolve everything */
} coffer_change;

/* Watches (project, environment, version) on ch (NULL names: every secret) from from_revision
 * (0: from now; a revision you resolved: every change after it). Nothing is sent until the first
 * coffer_watch_next. */
COFFER_API int coffer_watch_open(coffer_channel *ch, const char *project, const char *environment,
                                 coffer_version version, const char *const *names, size_t n_names,
                                 int64_t from_revision, coffer_watch **out, coffer_error *err);
/* Waits up to timeout_ms (negative: for ever) for the next change: 1 and *change filled (valid
 * until the next call on w), 0 when the time is up first, negative with err when the server
 * refuses the watch (UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, INVALID_ARGUMENT,
 * RESOURCE_EXHAUSTED for too many watches). A broken stream is opened again by itself, with
 * exponential backoff and jitter, from the last revision seen: no change is missed (several may
 * arrive folded into one). */
COFFER_API int coffer_watch_next(coffer_watch *w, int timeout_ms, coffer_change *change,
                                 coffer_error *err);
/* The last revision the watch has seen (0 before the server first answered). */
COFFER_API int64_t coffer_watch_revision(const coffer_watch *w);
/* Ends the watch. */
COFFER_API void coffer_watch_close(coffer_watch *w);

#ifdef __cplusplus
}
#endif

/* The typed calls, one per RPC (generated). */
#include "coffer/v1/access.stub.h"
#include "coffer/v1/environments.stub.h"
#include "coffer/v1/projects.stub.h"
#include "coffer/v1/secrets.stub.h"

#endif
