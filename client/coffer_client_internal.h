/*
 * coffer_client_internal.h - what libcoffer's own files (and the generated stubs) share; not
 * installed, not exported (coffer__ names, hidden visibility).
 */
#ifndef COFFER_CLIENT_INTERNAL_H
#define COFFER_CLIENT_INTERNAL_H

#include <stddef.h>

#include "coffer/client.h"
#include "coffer_rpc_meta.h"

/* One unary call of method m, retried on UNAVAILABLE with exponential backoff and full jitter
 * while attempts and the deadline last. On success *resp is a new message (free it with
 * protobuf_c_message_free_unpacked(*resp, NULL)). */
int coffer__call_unary(coffer_channel *ch, const coffer_method_desc *m, const ProtobufCMessage *req,
                       ProtobufCMessage **resp, coffer_error *err);
/* Fills err (NULL-safe) with a status code and a printf-formatted message; returns -1. */
int coffer__fail(coffer_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Overwrites n bytes at p with zeros in a way the compiler keeps. NULL-safe. */
void coffer__wipe(void *p, size_t n);

#endif
