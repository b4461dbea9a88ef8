/*
 * metrics.h - Prometheus metrics, served at /metrics on their own HTTP listener.
 *
 *   coffer_calls_total{method,code}              calls finished, by full method and status name
 *   coffer_call_duration_seconds{method}         histogram of call durations
 *   coffer_errors_total{code}                    calls answered INTERNAL/UNAVAILABLE/..., by code
 *   coffer_db_connections{state="up"|"down"}     worker connections by their last known state
 *   coffer_db_errors_total                       calls that found the database unavailable
 *   coffer_audit_backlog                         audit rows waiting to be written
 *   coffer_audit_failures_total                  calls refused because the audit log failed
 *   coffer_keyring_active_term                   the term new values are sealed under
 *   coffer_workers                               worker threads
 *   coffer_build_info{version}                   1
 *   coffer_start_time_seconds                    process start, Unix time
 * Counters are lock-free; the listener is one thread answering one request at a time.
 */
#ifndef COFFER_METRICS_H
#define COFFER_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"
#include "rpc.h"

struct metrics;
struct audit;
struct crypt_keyring;

/* Creates the registry for the methods of `bindings` (plus "other" for unknown ones). */
int metrics_new(const struct rpc_binding *bindings, size_t n_bindings, int workers,
                struct metrics **out, struct cof_err *e) __attribute__((warn_unused_result));
/* Serves /metrics on `listen` (host:port; "" serves nothing). The scrape also reads the audit
 * backlog and the keyring's active term. */
int metrics_serve(struct metrics *m, const char *listen, struct audit *audit,
                  struct crypt_keyring *kr, struct cof_err *e) __attribute__((warn_unused_result));
/* The bound port (0 when not serving). */
int metrics_port(const struct metrics *m);
/* Stops the listener and frees the registry. NULL-safe. */
void metrics_free(struct metrics *m);

void metrics_observe(struct metrics *m, const char *method, int code, double duration_ms);
/* A worker's connection was found up or down (worker: 0 .. workers-1). */
void metrics_db_state(struct metrics *m, int worker, bool up);
void metrics_db_error(struct metrics *m);
void metrics_audit_failure(struct metrics *m);
/* Renders the exposition text into a malloc'd string (tests, and the listener). */
char *metrics_render(struct metrics *m);

#endif
