/*
 * load - a gRPC load generator on the C core: keeps exactly N calls in flight over K connections
 * for S seconds (or until C calls are done) and prints throughput, latency percentiles and the
 * gRPC status of every call (h2load counts HTTP 200s only; this counts what the server said).
 *
 *   coffer-load --target ADDR --request KIND [--token T | --tokens FILE] [--concurrency N]
 *               [--connections K] [--seconds S] [--warmup S] [--count C] [--threads T]
 *               [--label L]
 *
 * KIND, with i the number of the call (0, 1, 2...):
 *   health                         grpc.health.v1.Health/Check
 *   resolve:P:E:V                  Secrets/ResolveSecrets of project P, environment E, version V
 *   resolve-spread:PREFIX:N:E:V    the same over projects PREFIX-0 .. PREFIX-(N-1), round robin
 *   resolve-min:P:E:V:R            ResolveSecrets with min_revision R (it waits for R)
 *   create-project:NAME            Projects/CreateProject NAME-i
 *   create-secret:P                Secrets/CreateSecret S_i in P, a random 64-byte value
 *   create-secret-spread:PREFIX:M  Secrets/CreateSecret S_(i%M) in PREFIX-(i/M)
 *   rewrite:P:S                    Secrets/UpdateSecret S in P with a new random value
 *   set-override:P:E:V             Environments/SetOverride of S_i in (P, E, V)
 *   merge:P:SRC:DST                Environments/MergeEnvironment SRC into DST
 * The token comes from --token or COFFER_TOKEN; with --tokens, call i uses line i % lines of FILE
 * (resolve-spread over projects that each have their runtime token). The last line is
 * machine-readable: RESULT label=L calls=... seconds=... rps=... p50_ms=... p99_ms=... max_ms=...
 * ok=... failed=... Figures, not assertions: scripts/dev bench.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coffer/v1/environments.pb-c.h"
#include "coffer/v1/projects.pb-c.h"
#include "coffer/v1/secrets.pb-c.h"
#include "coffer_shared.h"
#include "grpc/health/v1/health.pb-c.h"

#define MAX_FIELDS 6

struct request_kind {
	char kind[32];               /* health, resolve, ... */
	char field[MAX_FIELDS][128]; /* its colon-separated arguments */
	int n_fields;                /* how many */
};

struct call_slot {
	struct load *load;                     /* owner */
	grpc_call *call;                       /* the call in flight */
	grpc_metadata_array initial, trailing; /* what came back */
	grpc_byte_buffer *resp;                /* the answer */
	grpc_status_code status;               /* its status */
	grpc_slice details;                    /* its message */
	grpc_metadata auth;                    /* authorization */
	double started;                        /* when it was sent */
	int channel;                           /* which connection */
};

struct load {
	struct request_kind req;      /* what to send */
	char **auth;                  /* "Bearer ..." values, or none */
	size_t n_auth;                /* how many */
	grpc_channel **channels;      /* K connections */
	int n_channels;               /* K */
	grpc_completion_queue *cq;    /* shared by the threads */
	atomic_long next;             /* the number of the next call */
	long count;                   /* stop after this many calls (0: by time) */
	double measure_from, stop_at; /* wall clock bounds of the measurement */
	atomic_int in_flight;         /* calls not finished */
	atomic_bool done;             /* the queue is shut down */
	pthread_mutex_t mu;           /* guards what follows */
	uint32_t *lat_us;             /* latencies of measured calls */
	size_t n_lat, cap_lat;        /* entries, room */
	long codes[17];               /* measured calls by status */
	long unmeasured;              /* calls during warm-up */
	char last_error[256];         /* the last failure's message */
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void random_value(char *out, size_t n)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	for (size_t i = 0; i + 1 < n; i++)
		out[i] = alphabet[(size_t)rand() % (sizeof(alphabet) - 1)];
	out[n - 1] = '\0';
}

static int version_of(const char *s)
{
	return strcmp(s, "draft") == 0 ? 1 : strcmp(s, "live") == 0 ? 2 : atoi(s);
}

static bool need(const struct request_kind *r, int n)
{
	if (r->n_fields == n)
		return true;
	fprintf(stderr, "coffer-load: %s takes %d argument%s\n", r->kind, n, n == 1 ? "" : "s");
	return false;
}

/* The method and the packed request of call number i. */
static grpc_byte_buffer *build(struct load *l, long i, const char **method)
{
	const struct request_kind *r = &l->req;
	const char(*f)[128] = r->field;
	char name[160], value[65], project[160];
	ProtobufCMessage *msg = NULL;
	Grpc__Health__V1__HealthCheckRequest health = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Coffer__V1__ResolveSecretsRequest resolve = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	Coffer__V1__CreateProjectRequest cproj = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	Coffer__V1__CreateSecretRequest csec = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	Coffer__V1__UpdateSecretRequest usec = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	Coffer__V1__SetOverrideRequest sov = COFFER__V1__SET_OVERRIDE_REQUEST__INIT;
	Coffer__V1__MergeEnvironmentRequest merge = COFFER__V1__MERGE_ENVIRONMENT_REQUEST__INIT;
	random_value(value, sizeof(value));
	if (strcmp(r->kind, "health") == 0) {
		*method = "/grpc.health.v1.Health/Check";
		health.service = "";
		msg = &health.base;
	} else if (strcmp(r->kind, "resolve-min") == 0) {
		*method = "/coffer.v1.Secrets/ResolveSecrets";
		resolve.project = (char *)f[0];
		resolve.environment = (char *)f[1];
		resolve.version = version_of(f[2]);
		resolve.min_revision = atoll(f[3]);
		msg = &resolve.base;
	} else if (strcmp(r->kind, "resolve") == 0 || strcmp(r->kind, "resolve-spread") == 0) {
		*method = "/coffer.v1.Secrets/ResolveSecrets";
		bool spread = r->kind[7] == '-';
		if (spread)
			snprintf(project, sizeof(project), "%s-%ld", f[0], i % atol(f[1]));
		resolve.project = spread ? project : (char *)f[0];
		resolve.environment = (char *)f[spread ? 2 : 1];
		resolve.version = version_of(f[spread ? 3 : 2]);
		msg = &resolve.base;
	} else if (strcmp(r->kind, "create-project") == 0) {
		*method = "/coffer.v1.Projects/CreateProject";
		snprintf(name, sizeof(name), "%s-%ld", f[0], i);
		cproj.name = name;
		cproj.description = "";
		msg = &cproj.base;
	} else if (strcmp(r->kind, "create-secret") == 0 ||
	           strcmp(r->kind, "create-secret-spread") == 0) {
		*method = "/coffer.v1.Secrets/CreateSecret";
		bool spread = r->kind[13] == '-';
		long per = spread ? atol(f[1]) : 0;
		if (spread)
			snprintf(project, sizeof(project), "%s-%ld", f[0], i / per);
		snprintf(name, sizeof(name), "S_%ld", spread ? i % per : i);
		csec.project = spread ? project : (char *)f[0];
		csec.name = name;
		csec.value = value;
		csec.description = "";
		csec.visibility = 1;
		msg = &csec.base;
	} else if (strcmp(r->kind, "rewrite") == 0) {
		*method = "/coffer.v1.Secrets/UpdateSecret";
		usec.project = (char *)f[0];
		usec.name = (char *)f[1];
		usec.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
		usec.value = value;
		msg = &usec.base;
	} else if (strcmp(r->kind, "set-override") == 0) {
		*method = "/coffer.v1.Environments/SetOverride";
		snprintf(name, sizeof(name), "S_%ld", i);
		sov.project = (char *)f[0];
		sov.environment = (char *)f[1];
		sov.version = version_of(f[2]);
		sov.secret = name;
		sov.value = value;
		msg = &sov.base;
	} else if (strcmp(r->kind, "merge") == 0) {
		*method = "/coffer.v1.Environments/MergeEnvironment";
		merge.project = (char *)f[0];
		merge.source = (char *)f[1];
		merge.target = (char *)f[2];
		msg = &merge.base;
	}
	if (msg == NULL)
		return NULL;
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice s = grpc_slice_malloc(len);
	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

static bool valid_kind(const struct request_kind *r)
{
	static const struct {
		const char *kind;
		int args;
	} kinds[] = {{"health", 0},
	             {"resolve", 3},
	             {"resolve-spread", 4},
	             {"resolve-min", 4},
	             {"create-project", 1},
	             {"create-secret", 1},
	             {"create-secret-spread", 2},
	             {"rewrite", 2},
	             {"set-override", 3},
	             {"merge", 3}};
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (strcmp(kinds[k].kind, r->kind) == 0)
			return need(r, kinds[k].args);
	fprintf(stderr, "coffer-load: unknown request kind %s\n", r->kind);
	return false;
}

/* Starts call number next on slot s; false when the run is over. */
static bool start(struct call_slot *s)
{
	struct load *l = s->load;
	long i = atomic_fetch_add(&l->next, 1);
	if ((l->count > 0 && i >= l->count) || (l->count == 0 && now_s() >= l->stop_at))
		return false;
	const char *path = NULL;
	grpc_byte_buffer *req = build(l, i, &path);
	s->channel = (int)(i % l->n_channels);
	grpc_slice method = grpc_slice_from_static_string(path);
	s->call = grpc_channel_create_call(
	        l->channels[s->channel], NULL, GRPC_PROPAGATE_DEFAULTS, l->cq, method, NULL,
	        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(30, GPR_TIMESPAN)),
	        NULL);
	grpc_metadata_array_init(&s->initial);
	grpc_metadata_array_init(&s->trailing);
	s->resp = NULL;
	grpc_op ops[6];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (l->n_auth) {
		s->auth.key = grpc_slice_from_static_string("authorization");
		s->auth.value = grpc_slice_from_static_string(l->auth[(size_t)i % l->n_auth]);
		ops[0].data.send_initial_metadata.count = 1;
		ops[0].data.send_initial_metadata.metadata = &s->auth;
	}
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = req;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &s->resp;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &s->trailing;
	ops[5].data.recv_status_on_client.status = &s->status;
	ops[5].data.recv_status_on_client.status_details = &s->details;
	s->started = now_s();
	atomic_fetch_add(&l->in_flight, 1);
	grpc_call_error err = grpc_call_start_batch(s->call, ops, 6, s, NULL);
	grpc_byte_buffer_destroy(req);
	if (err != GRPC_CALL_OK) {
		fprintf(stderr, "coffer-load: cannot start a call (%d)\n", (int)err);
		exit(1);
	}
	return true;
}

static void finished(struct call_slot *s)
{
	struct load *l = s->load;
	double end = now_s();
	int code = (int)s->status;
	pthread_mutex_lock(&l->mu);
	if (s->started >= l->measure_from) {
		if (l->n_lat == l->cap_lat) {
			l->cap_lat = l->cap_lat ? l->cap_lat * 2 : 65536;
			l->lat_us = realloc(l->lat_us, l->cap_lat * sizeof(*l->lat_us));
		}
		l->lat_us[l->n_lat++] = (uint32_t)((end - s->started) * 1e6);
		l->codes[code >= 0 && code <= 16 ? code : 2]++;
	} else {
		l->unmeasured++;
	}
	if (code != 0) {
		char *msg = grpc_slice_to_c_string(s->details);
		snprintf(l->last_error, sizeof(l->last_error), "%s: %s", coffer_status_name(code),
		         msg);
		gpr_free(msg);
	}
	pthread_mutex_unlock(&l->mu);
	if (s->resp)
		grpc_byte_buffer_destroy(s->resp);
	grpc_slice_unref(s->details);
	grpc_metadata_array_destroy(&s->initial);
	grpc_metadata_array_destroy(&s->trailing);
	grpc_call_unref(s->call);
	s->call = NULL;
	atomic_fetch_sub(&l->in_flight, 1);
}

static void *worker(void *arg)
{
	struct load *l = arg;
	for (;;) {
		grpc_event ev =
		        grpc_completion_queue_next(l->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct call_slot *s = ev.tag;
		finished(s);
		if (!start(s) && atomic_load(&l->in_flight) == 0 &&
		    !atomic_exchange(&l->done, true))
			grpc_completion_queue_shutdown(l->cq);
	}
}

/* The authorization values: every line of file, or token, or none. */
static int load_tokens(struct load *l, const char *token, const char *file)
{
	char line[512];
	FILE *f = file ? fopen(file, "r") : NULL;
	if (file && f == NULL) {
		fprintf(stderr, "coffer-load: cannot read %s\n", file);
		return -1;
	}
	while (f ? fgets(line, sizeof(line), f) != NULL : (token && l->n_auth == 0)) {
		const char *t = f ? line : token;
		size_t n = strcspn(t, "\r\n");
		if (n == 0)
			continue;
		l->auth = realloc(l->auth, (l->n_auth + 1) * sizeof(*l->auth));
		l->auth[l->n_auth] = malloc(n + 8);
		snprintf(l->auth[l->n_auth++], n + 8, "Bearer %.*s", (int)n, t);
	}
	if (f)
		fclose(f);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static double pct(const uint32_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t k = (size_t)(p * (double)(n - 1) + 0.5);
	return v[k] / 1000.0;
}

static int usage(void)
{
	fprintf(stderr, "usage: coffer-load --target ADDR --request KIND [--token T] "
	                "[--concurrency N] [--connections K] [--seconds S] [--warmup S] "
	                "[--count C] [--threads T] [--label L]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *target = NULL, *request = NULL, *label = "load";
	int concurrency = 16, connections = 4, threads = 1;
	double seconds = 5, warmup = 1;
	long count = 0;
	struct load *l = calloc(1, sizeof(*l));
	const char *token = getenv("COFFER_TOKEN"), *tokens = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			return usage();
		if (strcmp(a, "--target") == 0)
			target = v;
		else if (strcmp(a, "--request") == 0)
			request = v;
		else if (strcmp(a, "--token") == 0)
			token = v;
		else if (strcmp(a, "--tokens") == 0)
			tokens = v;
		else if (strcmp(a, "--concurrency") == 0)
			concurrency = atoi(v);
		else if (strcmp(a, "--connections") == 0)
			connections = atoi(v);
		else if (strcmp(a, "--seconds") == 0)
			seconds = atof(v);
		else if (strcmp(a, "--warmup") == 0)
			warmup = atof(v);
		else if (strcmp(a, "--count") == 0)
			count = atol(v);
		else if (strcmp(a, "--threads") == 0)
			threads = atoi(v);
		else if (strcmp(a, "--label") == 0)
			label = v;
		else
			return usage();
		i++;
	}
	if (target == NULL || request == NULL || concurrency < 1 || connections < 1 || threads < 1)
		return usage();
	/* KIND:ARG:ARG... */
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", request);
	char *save = NULL, *part = strtok_r(buf, ":", &save);
	snprintf(l->req.kind, sizeof(l->req.kind), "%s", part ? part : "");
	while ((part = strtok_r(NULL, ":", &save)) != NULL && l->req.n_fields < MAX_FIELDS)
		snprintf(l->req.field[l->req.n_fields++], 128, "%s", part);
	if (!valid_kind(&l->req))
		return 2;
	if (count > 0) {
		warmup = 0;
		if (concurrency > count)
			concurrency = (int)count;
	}
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	grpc_init();
	l->count = count;
	l->n_channels = connections;
	l->channels = calloc((size_t)connections, sizeof(*l->channels));
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	for (int k = 0; k < connections; k++) {
		/* Distinct channel arguments keep gRPC from sharing one connection (subchannel). */
		grpc_arg arg = {GRPC_ARG_INTEGER, (char *)"coffer.load.connection", {.integer = k}};
		grpc_channel_args args = {1, &arg};
		l->channels[k] = grpc_channel_create(target, creds, &args);
	}
	grpc_channel_credentials_release(creds);
	l->cq = grpc_completion_queue_create_for_next(NULL);
	pthread_mutex_init(&l->mu, NULL);
	if (load_tokens(l, token, tokens) != 0)
		return 1;
	struct call_slot *slots = calloc((size_t)concurrency, sizeof(*slots));
	double t0 = now_s();
	l->measure_from = t0 + warmup;
	l->stop_at = l->measure_from + seconds;
	for (int k = 0; k < concurrency; k++) {
		slots[k].load = l;
		start(&slots[k]);
	}
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	for (int k = 0; k < threads; k++)
		pthread_create(&t[k], NULL, worker, l);
	for (int k = 0; k < threads; k++)
		pthread_join(t[k], NULL);
	double elapsed = now_s() - (count > 0 ? t0 : l->measure_from);
	if (count == 0 && elapsed > seconds)
		elapsed = seconds; /* the calls that straggle after the end are not throughput */
	qsort(l->lat_us, l->n_lat, sizeof(*l->lat_us), cmp_u32);
	long ok = l->codes[0], failed = 0;
	char codes[512] = "";
	for (int c = 0; c <= 16; c++) {
		if (l->codes[c] == 0)
			continue;
		if (c)
			failed += l->codes[c];
		size_t n = strlen(codes);
		snprintf(codes + n, sizeof(codes) - n, "%s%s:%ld", n ? "," : "",
		         coffer_status_name(c), l->codes[c]);
	}
	double rps = (double)l->n_lat / elapsed;
	printf("%-28s %9.0f calls/s  p50 %7.3f ms  p99 %7.3f ms  max %8.3f ms  (%s)\n", label, rps,
	       pct(l->lat_us, l->n_lat, 0.5), pct(l->lat_us, l->n_lat, 0.99),
	       pct(l->lat_us, l->n_lat, 1.0), codes);
	if (failed)
		printf("  last failure: %s\n", l->last_error);
	printf("RESULT label=%s calls=%zu seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f "
	       "max_ms=%.3f ok=%ld failed=%ld concurrency=%d\n",
	       label, l->n_lat, elapsed, rps, pct(l->lat_us, l->n_lat, 0.5),
	       pct(l->lat_us, l->n_lat, 0.99), pct(l->lat_us, l->n_lat, 1.0), ok, failed,
	       concurrency);
	for (int k = 0; k < connections; k++)
		grpc_channel_destroy(l->channels[k]);
	grpc_completion_queue_destroy(l->cq);
	grpc_shutdown();
	return failed ? 1 : 0;
}
