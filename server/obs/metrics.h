/*
 * metrics.h - Prometheus metrics; the daemon serves metrics_render at /metrics on an HTTP listener
 * of its own (http/).
 *
 *   coffer_calls_total{method,code}              calls finished, by full method and status name
 *   coffer_call_duration_seconds{method}         histogram of call durations
 *   coffer_errors_total{code}                    calls answered INTERNAL/UNAVAILABLE/..., by code
 *   coffer_db_errors_total                       calls that found the database unavailable
 *   coffer_audit_failures_total                  calls refused because the audit log failed
 *   coffer_tokenless_refusals_total              calls refused before any token was accepted
 *   coffer_build_info{version}                   1
 *   coffer_start_time_seconds                    process start, Unix time
 * and the gauges other rooms register (metrics_gauge), read at each scrape: the daemon adds the
 * database connections by state, the audit backlog, the keyring's active term and the workers.
 * Counters are lock-free.
 */
#ifndef COFFER_METRICS_H
#define COFFER_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

struct metrics;

/* A gauge's value, read at scrape time (from the listener's thread). */
typedef double (*metrics_gauge_fn)(void *arg);

/* Creates the registry for the full method paths in paths[0..n) (plus "other" for unknown ones).
 * The strings must outlive the registry. */
int metrics_new(const char *const *paths, size_t n, struct metrics **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Adds a gauge `name{labels}` (labels may be NULL) with a HELP line; gauges of one name are
 * registered one after the other. A name ending in _total is exposed as a counter (its value only
 * grows). Before the first metrics_render only. The strings must outlive m. */
int metrics_gauge(struct metrics *m, const char *name, const char *labels, const char *help,
                  metrics_gauge_fn fn, void *arg) __attribute__((warn_unused_result));
/* Frees the registry. NULL-safe. */
void metrics_free(struct metrics *m);

void metrics_observe(struct metrics *m, const char *method, int code, double duration_ms);
void metrics_db_error(struct metrics *m);
void metrics_audit_failure(struct metrics *m);
/* A call refused before any token was accepted (no, a bad, revoked or expired token). */
void metrics_tokenless_refusal(struct metrics *m);
/* Renders the exposition text into a malloc'd string (tests, and the listener). */
char *metrics_render(struct metrics *m);

#endif
