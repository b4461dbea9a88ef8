/*
 * internal.h - helpers shared by libcoffer's own files (coffer__ names, not installed).
 */
#ifndef COFFER_CLIENT_INTERNAL_H
#define COFFER_CLIENT_INTERNAL_H

#include <stddef.h>

#include "coffer/call.h"

/* Fills err (NULL-safe) with a gRPC code and a printf-formatted message; returns -1. */
int coffer__fail(coffer_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Overwrites n bytes at p with zeros in a way the compiler keeps. NULL-safe. */
void coffer__wipe(void *p, size_t n);

#endif
