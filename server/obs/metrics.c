/* metrics.c - counters, histograms and their Prometheus text (see metrics.h). */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coffer_shared.h"
#include "log.h"

#define N_CODES 17
static const double BUCKETS_MS[] = {1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define N_BUCKETS (sizeof(BUCKETS_MS) / sizeof(BUCKETS_MS[0]))

struct method_stats {
	const char *path;                 /* full method path, or "other" */
	atomic_ullong calls[N_CODES];     /* by status code */
	atomic_ullong buckets[N_BUCKETS]; /* by the first bucket the duration fits (summed up when
	                                     rendered: one counter per call, not one per bucket) */
	atomic_ullong count;              /* observations */
	atomic_ullong sum_us;             /* total duration, microseconds */
};

#define MAX_GAUGES 32

struct gauge {
	const char *name;    /* metric name */
	const char *labels;  /* `k="v"`, or NULL */
	const char *help;    /* HELP text */
	metrics_gauge_fn fn; /* reads the value */
	void *arg;           /* its argument */
};

struct metrics {
	struct method_stats *methods;    /* registry order, then "other" */
	size_t n_methods;                /* entries in methods */
	atomic_ullong errors[N_CODES];   /* non-OK server-side codes */
	atomic_ullong db_errors;         /* database unavailable */
	atomic_ullong audit_failures;    /* audit log failed */
	atomic_ullong tokenless;         /* refused before any token was accepted */
	struct gauge gauges[MAX_GAUGES]; /* registered gauges, in order */
	size_t n_gauges;                 /* entries in gauges */
	double start_time;               /* Unix time */
};

int metrics_new(const char *const *paths, size_t n, struct metrics **out, struct cof_err *e)
{
	*out = NULL;
	struct metrics *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	m->methods = calloc(n + 1, sizeof(*m->methods));
	if (m->methods == NULL) {
		metrics_free(m);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		m->methods[m->n_methods++].path = paths[i];
	m->methods[m->n_methods++].path = "other";
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	m->start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	*out = m;
	return 0;
}

/* A registered value whose name ends in _total counts up: a counter, not a gauge. */
static bool is_counter(const char *name)
{
	size_t n = strlen(name);
	return n > 6 && strcmp(name + n - 6, "_total") == 0;
}

int metrics_gauge(struct metrics *m, const char *name, const char *labels, const char *help,
                  metrics_gauge_fn fn, void *arg)
{
	if (m->n_gauges == MAX_GAUGES)
		return COF_EINTERNAL;
	m->gauges[m->n_gauges++] = (struct gauge){name, labels, help, fn, arg};
	return 0;
}
void metrics_observe(struct metrics *m, const char *method, int code, double duration_ms)
{
	if (m == NULL)
		return;
	struct method_stats *s = &m->methods[m->n_methods - 1];
	for (size_t i = 0; i + 1 < m->n_methods; i++)
		if (strcmp(m->methods[i].path, method) == 0) {
			s = &m->methods[i];
			break;
		}
	int c = code >= 0 && code < N_CODES ? code : 2;
	atomic_fetch_add(&s->calls[c], 1);
	if (c != 0)
		atomic_fetch_add(&m->errors[c], 1);
	for (size_t b = 0; b < N_BUCKETS; b++)
		if (duration_ms <= BUCKETS_MS[b]) {
			atomic_fetch_add(&s->buckets[b], 1);
			break;
		}
	atomic_fetch_add(&s->count, 1);
	atomic_fetch_add(&s->sum_us, (unsigned long long)(duration_ms * 1000.0));
}

void metrics_db_error(struct metrics *m)
{
	if (m)
		atomic_fetch_add(&m->db_errors, 1);
}

void metrics_audit_failure(struct metrics *m)
{
	if (m)
		atomic_fetch_add(&m->audit_failures, 1);
}

void metrics_tokenless_refusal(struct metrics *m)
{
	if (m)
		atomic_fetch_add(&m->tokenless, 1);
}

struct text {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (t->p && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap + (size_t)n + 1) * 2;
		char *p = realloc(t->p, cap);
		if (p == NULL)
			return;
		t->p = p;
		t->cap = cap;
	}
}

char *metrics_render(struct metrics *m)
{
	struct text t = {0};
	put(&t, "# HELP coffer_calls_total gRPC calls finished, by method and status code.\n"
	        "# TYPE coffer_calls_total counter\n");
	for (size_t i = 0; i < m->n_methods; i++)
		for (int c = 0; c < N_CODES; c++) {
			unsigned long long v = atomic_load(&m->methods[i].calls[c]);
			if (v)
				put(&t, "coffer_calls_total{method=\"%s\",code=\"%s\"} %llu\n",
				    m->methods[i].path, coffer_status_name(c), v);
		}
	put(&t, "# HELP coffer_call_duration_seconds Duration of gRPC calls.\n"
	        "# TYPE coffer_call_duration_seconds histogram\n");
	for (size_t i = 0; i < m->n_methods; i++) {
		const struct method_stats *s = &m->methods[i];
		unsigned long long count = atomic_load(&s->count);
		if (count == 0)
			continue;
		unsigned long long upto = 0; /* Prometheus buckets are cumulative */
		for (size_t b = 0; b < N_BUCKETS; b++) {
			upto += (unsigned long long)atomic_load(&s->buckets[b]);
			put(&t,
			    "coffer_call_duration_seconds_bucket{method=\"%s\",le=\"%g\"} %llu\n",
			    s->path, BUCKETS_MS[b] / 1000.0, upto);
		}
		put(&t, "coffer_call_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %llu\n",
		    s->path, count);
		put(&t, "coffer_call_duration_seconds_sum{method=\"%s\"} %.6f\n", s->path,
		    (double)atomic_load(&s->sum_us) / 1e6);
		put(&t, "coffer_call_duration_seconds_count{method=\"%s\"} %llu\n", s->path, count);
	}
	put(&t, "# HELP coffer_errors_total Calls answered with an error, by status code.\n"
	        "# TYPE coffer_errors_total counter\n");
	for (int c = 1; c < N_CODES; c++)
		put(&t, "coffer_errors_total{code=\"%s\"} %llu\n", coffer_status_name(c),
		    (unsigned long long)atomic_load(&m->errors[c]));
	put(&t,
	    "# HELP coffer_db_errors_total Calls that found the database unavailable.\n"
	    "# TYPE coffer_db_errors_total counter\ncoffer_db_errors_total %llu\n",
	    (unsigned long long)atomic_load(&m->db_errors));
	put(&t,
	    "# HELP coffer_audit_failures_total Calls refused because the audit log failed.\n"
	    "# TYPE coffer_audit_failures_total counter\ncoffer_audit_failures_total %llu\n",
	    (unsigned long long)atomic_load(&m->audit_failures));
	put(&t,
	    "# HELP coffer_tokenless_refusals_total Calls refused before any token was accepted.\n"
	    "# TYPE coffer_tokenless_refusals_total counter\ncoffer_tokenless_refusals_total "
	    "%llu\n",
	    (unsigned long long)atomic_load(&m->tokenless));
	for (size_t i = 0; i < m->n_gauges; i++) {
		const struct gauge *g = &m->gauges[i];
		if (i == 0 || strcmp(m->gauges[i - 1].name, g->name) != 0)
			put(&t, "# HELP %s %s\n# TYPE %s %s\n", g->name, g->help, g->name,
			    is_counter(g->name) ? "counter" : "gauge");
		put(&t, "%s%s%s%s %.17g\n", g->name, g->labels ? "{" : "",
		    g->labels ? g->labels : "", g->labels ? "}" : "", g->fn(g->arg));
	}
	put(&t,
	    "# HELP coffer_build_info Build information.\n# TYPE coffer_build_info gauge\n"
	    "coffer_build_info{version=\"%s\"} 1\n",
	    COFFER_VERSION);
	put(&t,
	    "# HELP coffer_start_time_seconds Process start, Unix time.\n"
	    "# TYPE coffer_start_time_seconds gauge\ncoffer_start_time_seconds %.3f\n",
	    m->start_time);
	return t.p;
}

void metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	free(m->methods);
	free(m);
}
