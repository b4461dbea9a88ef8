/*
 * api.h - the services cofferd serves, as the gRPC runtime sees them.
 *
 * struct api is process-wide: the access settings, the domain (connection pool and keyring), the
 * audit writer and the metrics. It is defined in state.h, not here, because every file of the room
 * reads it through call.h, and call.h cannot include this header: api.c includes call.h, and the
 * two would include each other. The runtime's entries, api_unary and api_stream, are run.h's.
 */
#ifndef COFFER_API_H
#define COFFER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "rpc.h"
#include "state.h"

/* The services and their handler tables. */
extern const struct rpc_binding api_bindings[];
extern const size_t api_n_bindings;

/* Keeps d, audit and m (not owned). */
int api_new(const struct api_config *cfg, struct domain *d, struct audit *audit, struct metrics *m,
            struct api **out, struct cof_err *e) __attribute__((warn_unused_result));
/* NULL-safe. */
void api_free(struct api *a);
/* The metrics the calls count into (made after the api: its gauges read the api). */
void api_set_metrics(struct api *a, struct metrics *m);
/* Calls waiting for a database thread, and calls parked for a revision (the metrics). */
double api_db_backlog(struct api *a);
double api_parked(struct api *a);
double api_watching(struct api *a);

/* Whether the access policy table lists the method (a method without one is refused). */
bool api_has_policy(const char *path);

/* rpc_server_opts.on_call: the call's metrics and its JSON log line. */
void api_on_call(const struct rpc_call_info *info, void *app);
/* rpc_server_opts.on_drain: parked calls are answered now (shutdown). */
void api_drain(void *app);
/* What the domain hears of a project change (domain_on_change): parked calls may go on. */
void api_project_changed(void *app, int64_t project_id, int64_t revision);

#endif
