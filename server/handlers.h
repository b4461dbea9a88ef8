/*
 * handlers.h - what every handlers_*.c shares: the worker's store, error replies, timestamps.
 *
 * A handler validates its request, calls the domain or the store, and maps the result to a status
 * with handler_error. It builds its response in the call's arena (rpc_alloc).
 */
#ifndef COFFER_HANDLERS_H
#define COFFER_HANDLERS_H

#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "errors.h"
#include "rpc.h"

#include "coffer/v1/access.rpc.h"
#include "coffer/v1/environments.rpc.h"
#include "coffer/v1/projects.rpc.h"
#include "coffer/v1/secrets.rpc.h"
#include "grpc/health/v1/health.rpc.h"
#include "grpc/reflection/v1alpha/reflection.rpc.h"

/* The worker's store, ready for this call (deadline-bounded); NULL with e set when unreachable. */
struct store *handler_store(struct rpc_ctx *ctx, struct cof_err *e);
struct app *handler_app(struct rpc_ctx *ctx);
/* Logs e's detail (never a value) and returns its gRPC code with e's message. */
int handler_error(struct rpc_ctx *ctx, const struct cof_err *e);
/* A Timestamp in the call's arena from microseconds since the epoch. */
Google__Protobuf__Timestamp *handler_timestamp(struct rpc_ctx *ctx, int64_t us);
/* Request checks: each returns RPC_OK or sets an INVALID_ARGUMENT message and returns its code.
 * handler_check_project also records the project for the call log. */
int handler_check_project(struct rpc_ctx *ctx, const char *name);
int handler_check_environment(struct rpc_ctx *ctx, const char *field, const char *name);
int handler_check_secret(struct rpc_ctx *ctx, const char *name);
int handler_check_value(struct rpc_ctx *ctx, const char *value);
int handler_check_description(struct rpc_ctx *ctx, const char *description);
/* VERSION_DRAFT or VERSION_LIVE; unspecified too when allow_unspecified. */
int handler_check_version(struct rpc_ctx *ctx, int version, bool allow_unspecified);
/* A revision field (expected_*, min/at/known): not negative. */
int handler_check_revision(struct rpc_ctx *ctx, const char *field, int64_t revision);
/* Decodes page_token/page_size into after (cap bytes) and *limit; an rpc code on bad input. */
int handler_page(struct rpc_ctx *ctx, const char *token, int32_t size, char *after, size_t cap,
                 int *limit);
/* An arena copy of the token that continues after `last_name`. */
char *handler_next_token(struct rpc_ctx *ctx, const char *last_name);

extern const Coffer__V1__Projects__Handlers projects_handlers;
extern const Coffer__V1__Secrets__Handlers secrets_handlers;
extern const Coffer__V1__Environments__Handlers environments_handlers;
extern const Coffer__V1__Access__Handlers access_handlers;
extern const Grpc__Health__V1__Health__Handlers health_handlers;
extern const Grpc__Reflection__V1alpha__ServerReflection__Handlers reflection_handlers;

#endif
