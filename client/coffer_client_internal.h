/*
 * coffer_client_internal.h - what libcoffer's own files (and the generated stubs) share; not
 * installed, not exported (coffer__ names, hidden visibility).
 */
#ifndef COFFER_CLIENT_INTERNAL_H
#define COFFER_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/client.h"
#include "coffer_rpc_meta.h"

/* One unary call of method m, sent again (exponential backoff, full jitter) while
 * coffer__retry_allowed says so and attempts and the deadline last. On success *resp is a new
 * message (free it with protobuf_c_message_free_unpacked(*resp, NULL)). */
int coffer__call_unary(coffer_channel *ch, const coffer_method_desc *m, const ProtobufCMessage *req,
                       ProtobufCMessage **resp, coffer_error *err);
/* Whether a call of m that failed with code may be sent again: UNAVAILABLE of a method marked
 * idempotent, or UNAVAILABLE that the server marked as having written nothing. */
bool coffer__retry_allowed(const coffer_method_desc *m, int code, bool server_retryable);
/* Whether a target (host:port, dns:///host:port, ipv4:, ipv6:, unix:) is on this host. */
bool coffer__loopback(const char *target);
/* A snapshot of n secrets (copied; tests and fuzzing). 0, or -1 when memory runs out. */
int coffer__snapshot_new(const char *const *names, const char *const *values, size_t n,
                         int64_t revision, coffer_snapshot **out);
/* When a snapshot read from a fallback file was written (Unix seconds). */
void coffer__snapshot_set_time(coffer_snapshot *s, int64_t written);
/* Seals snap into fb->path (see fallback.c); token: the key's source unless a passphrase file. */
int coffer__fallback_save(const coffer_fallback *fb, const char *token, const char *project,
                          const char *environment, int version, const coffer_snapshot *snap,
                          coffer_error *err);
/* Opens fb->path, which must hold (project, environment, version); COFFER_NOT_FOUND when there is
 * none. */
int coffer__fallback_load(const coffer_fallback *fb, const char *token, const char *project,
                          const char *environment, int version, coffer_snapshot **out,
                          coffer_error *err);
/* Fills err (NULL-safe) with a status code and a printf-formatted message; returns -1. */
int coffer__fail(coffer_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
struct grpc_channel;
/* The core channel of ch, and its `authorization` value ("Bearer ...", or NULL). */
struct grpc_channel *coffer__grpc_channel(coffer_channel *ch);
const char *coffer__authorization(const coffer_channel *ch);
/* A random delay in [0, cap) milliseconds (backoff with full jitter). */
/* Overwrites n bytes at p with zeros in a way the compiler keeps. NULL-safe. */
void coffer__wipe(void *p, size_t n);

#endif
