/*
 * resolve_bench - how fast runtimes get their secrets: T threads, each with its own libcoffer
 * client, call coffer_resolve for S seconds; prints throughput and latency percentiles.
 *
 *   coffer-bench --project P --env E --version draft|live [--threads T] [--seconds S]
 *
 * COFFER_ADDR and COFFER_TOKEN (a runtime token) as for any client. `scripts/dev bench` sets up a
 * server and a seeded project and runs it at several thread counts. Figures, not assertions.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <coffer/client.h>

struct worker {
	const char *project, *env; /* what to resolve */
	coffer_version version;
	double seconds; /* how long */
	double *lat_ms; /* latencies */
	size_t n, cap;  /* entries, room */
	size_t errors;  /* failed resolves */
	size_t secrets; /* secrets in the last snapshot */
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	coffer_options o;
	coffer_options_init(&o);
	coffer_client *c = NULL;
	coffer_error err;
	if (coffer_client_new(&o, &c, &err) != 0)
		return NULL;
	double end = now_s() + w->seconds;
	while (now_s() < end) {
		double t0 = now_s();
		coffer_snapshot *s = NULL;
		int rc = coffer_resolve(c, w->project, w->env, w->version, &s, &err);
		double ms = (now_s() - t0) * 1e3;
		if (rc != 0) {
			w->errors++;
			continue;
		}
		w->secrets = coffer_snapshot_count(s);
		coffer_snapshot_free(s);
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 4096;
			w->lat_ms = realloc(w->lat_ms, w->cap * sizeof(*w->lat_ms));
		}
		w->lat_ms[w->n++] = ms;
	}
	coffer_client_free(c);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *project = NULL, *env = "main", *version = "live";
	int threads = 4;
	double seconds = 5;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--project") == 0)
			project = argv[i + 1];
		else if (strcmp(argv[i], "--env") == 0)
			env = argv[i + 1];
		else if (strcmp(argv[i], "--version") == 0)
			version = argv[i + 1];
		else if (strcmp(argv[i], "--threads") == 0)
			threads = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = atof(argv[i + 1]);
	}
	if (project == NULL || threads < 1 || threads > 256 || seconds <= 0) {
		fprintf(stderr, "usage: coffer-bench --project P [--env E] [--version draft|live] "
		                "[--threads T] [--seconds S]\n");
		return 2;
	}
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	double start = now_s();
	for (int i = 0; i < threads; i++) {
		w[i].project = project;
		w[i].env = env;
		w[i].version =
		        strcmp(version, "draft") == 0 ? COFFER_VERSION_DRAFT : COFFER_VERSION_LIVE;
		w[i].seconds = seconds;
		pthread_create(&t[i], NULL, run, &w[i]);
	}
	size_t total = 0, errors = 0, secrets = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		total += w[i].n;
		errors += w[i].errors;
		secrets = w[i].secrets > secrets ? w[i].secrets : secrets;
	}
	double elapsed = now_s() - start;
	double *all = malloc((total + 1) * sizeof(*all));
	size_t k = 0;
	for (int i = 0; i < threads; i++) {
		memcpy(all + k, w[i].lat_ms, w[i].n * sizeof(*all));
		k += w[i].n;
		free(w[i].lat_ms);
	}
	qsort(all, total, sizeof(*all), cmp);
#define PCT(p) (total ? all[(size_t)((double)(total - 1) * (p))] : 0.0)
	printf("resolve %s/%s/%s: %d threads, %.1f s, %zu secrets per snapshot\n", project, env,
	       version, threads, elapsed, secrets);
	printf("  %zu resolves (%zu errors), %.0f resolves/s\n", total, errors,
	       (double)total / elapsed);
	printf("  latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", PCT(0.5), PCT(0.9),
	       PCT(0.99), total ? all[total - 1] : 0.0);
	free(all);
	free(w);
	free(t);
	return errors ? 1 : 0;
}
