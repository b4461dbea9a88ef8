/*
 * replicas - how fast the other replicas learn of a write and of a revocation.
 *
 *   coffer-bench-replicas --writer ADDR --reader ADDR [--reader ADDR...] --project P
 *                         [--rounds N]
 *
 * COFFER_TOKEN is an admin token. The project gets a secret S and a runtime token. Each round:
 * every reader resolves (so that it answers from its cache), the writer changes S, then each
 * reader is polled (a resolve every 0.5 ms, no min_revision) until it answers the new value:
 * the time from the write's answer to that is its delay. And each reader is asked once with
 * min_revision = the write's revision: it must answer the new value (counted when it does not).
 * Then the same for a runtime token revoked on the writer: the time until every reader refuses
 * it. Then WatchSecrets: a watch of main/live open on every replica (the writer's too), and each
 * round the time from sending a write until each watch has delivered an event at its revision
 * (an upper bound of commit to event: it includes the write itself). Prints p50/p99/max of each
 * and a machine-readable line:
 *   RESULT label=replicas write_p50_ms=... write_p99_ms=... write_max_ms=... exact=N/M
 *          revoke_p50_ms=... revoke_p99_ms=... revoke_max_ms=... watch_p50_ms=...
 *          watch_p99_ms=... watch_max_ms=...
 * Figures, not assertions: scripts/dev bench.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <coffer/client.h>

#include "coffer/v1/access.stub.h"
#include "coffer/v1/projects.stub.h"
#include "coffer/v1/secrets.stub.h"

#define MAX_READERS 8

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static coffer_channel *open_channel(const char *addr, const char *token)
{
	coffer_channel_options o = {
	        .target = addr, .token = token, .timeout_ms = 10000, .plaintext = 1};
	coffer_channel *c = NULL;
	coffer_error err;
	if (coffer_channel_new(&o, &c, &err) != 0) {
		fprintf(stderr, "coffer-bench-replicas: %s: %s\n", addr, err.message);
		exit(1);
	}
	return c;
}

static void must(int rc, const coffer_error *err, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "coffer-bench-replicas: %s: %s\n", what, err->message);
		exit(1);
	}
}

/* Resolves S; the code; its value into v (64 bytes). */
static int resolve(coffer_channel *c, const char *project, int64_t min_revision, char *v)
{
	Coffer__V1__ResolveSecretsRequest req = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	req.project = (char *)project;
	req.environment = "main";
	req.version = COFFER__V1__VERSION__VERSION_LIVE;
	req.min_revision = min_revision;
	Coffer__V1__ResolveSecretsResponse *r = NULL;
	coffer_error err = {0};
	int rc = coffer_v1_secrets_resolve_secrets(c, &req, &r, &err);
	v[0] = '\0';
	if (rc == 0) {
		for (size_t i = 0; i < r->n_secrets; i++)
			if (strcmp(r->secrets[i]->name, "S") == 0)
				snprintf(v, 64, "%s", r->secrets[i]->value);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	return rc == 0 ? 0 : err.code;
}

/* Polls a resolve through c every 0.5 ms until it answers want (or code want_code, when not 0):
 * the milliseconds since t0, or -1 after 10 s. */
static double poll_until(coffer_channel *c, const char *project, const char *want, int want_code,
                         double t0)
{
	char v[64];
	while (now_ms() - t0 < 10000) {
		int code = resolve(c, project, 0, v);
		if (want_code ? code == want_code : code == 0 && strcmp(v, want) == 0)
			return now_ms() - t0;
		usleep(500);
	}
	return -1;
}

/* A runtime token of project (secret and id into the buffers). */
static void mint(coffer_channel *admin, const char *project, char *secret, char *id)
{
	Coffer__V1__CreateTokenRequest req = COFFER__V1__CREATE_TOKEN_REQUEST__INIT;
	req.name = "bench-replicas";
	req.role = COFFER__V1__ROLE__ROLE_RUNTIME;
	req.project = (char *)project;
	Coffer__V1__CreateTokenResponse *r = NULL;
	coffer_error err;
	must(coffer_v1_access_create_token(admin, &req, &r, &err), &err, "create token");
	snprintf(secret, 128, "%s", r->secret);
	snprintf(id, 32, "%s", r->token->id);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Sets S of project to value through admin; the revision written. */
static int64_t write_s(coffer_channel *admin, const char *project, const char *value)
{
	Coffer__V1__UpdateSecretRequest up = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	up.project = (char *)project;
	up.name = "S";
	up.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	up.value = (char *)value;
	Coffer__V1__Secret *s = NULL;
	coffer_error err;
	must(coffer_v1_secrets_update_secret(admin, &up, &s, &err), &err, "update");
	int64_t rev = s->revision;
	protobuf_c_message_free_unpacked(&s->base, NULL);
	return rev;
}

/* Each round: a write on admin's replica, then the time until every watch in w has delivered
 * an event at least at its revision, into ms (n_w per round); the watches that never did. */
static int watch_rounds(coffer_channel *admin, const char *project, coffer_watch **w, int n_w,
                        int rounds, double *ms, size_t *n_ms)
{
	int lost = 0;
	coffer_error err;
	for (int round = 0; round < rounds; round++) {
		char want[64];
		snprintf(want, sizeof(want), "x-%d", round);
		double t0 = now_ms();
		int64_t rev = write_s(admin, project, want);
		double seen[MAX_READERS + 1] = {0};
		int left = n_w;
		while (left > 0 && now_ms() - t0 < 10000) {
			for (int i = 0; i < n_w; i++) {
				if (seen[i] > 0)
					continue;
				coffer_change ch;
				int got = coffer_watch_next(w[i], 0, &ch, &err);
				must(got < 0, &err, "watch");
				if (got > 0 && ch.revision >= rev) {
					seen[i] = now_ms() - t0;
					ms[(*n_ms)++] = seen[i];
					left--;
				}
			}
			usleep(200);
		}
		lost += left;
	}
	return lost;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp);
	return v[(size_t)(p * (double)(n - 1) + 0.5)];
}

int main(int argc, char **argv)
{
	const char *writer = NULL, *project = NULL, *readers[MAX_READERS];
	int n_readers = 0, rounds = 50;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--writer") == 0)
			writer = argv[i + 1];
		else if (strcmp(argv[i], "--reader") == 0 && n_readers < MAX_READERS)
			readers[n_readers++] = argv[i + 1];
		else if (strcmp(argv[i], "--project") == 0)
			project = argv[i + 1];
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = atoi(argv[i + 1]);
	}
	const char *admin_token = getenv("COFFER_TOKEN");
	if (writer == NULL || n_readers == 0 || project == NULL || admin_token == NULL ||
	    rounds < 1) {
		fprintf(stderr, "usage: COFFER_TOKEN=<admin> coffer-bench-replicas --writer ADDR "
		                "--reader ADDR [--reader ADDR...] --project P [--rounds N]\n");
		return 2;
	}
	coffer_channel *admin = open_channel(writer, admin_token);
	coffer_error err;
	Coffer__V1__CreateProjectRequest cp = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	cp.name = (char *)project;
	cp.description = "";
	Coffer__V1__Project *proj = NULL;
	must(coffer_v1_projects_create_project(admin, &cp, &proj, &err), &err, "create project");
	protobuf_c_message_free_unpacked(&proj->base, NULL);
	Coffer__V1__CreateSecretRequest cs = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	cs.project = (char *)project;
	cs.name = "S";
	cs.value = "v-start";
	cs.description = "";
	Coffer__V1__Secret *sec = NULL;
	must(coffer_v1_secrets_create_secret(admin, &cs, &sec, &err), &err, "create secret");
	protobuf_c_message_free_unpacked(&sec->base, NULL);
	char runtime[128], runtime_id[32];
	mint(admin, project, runtime, runtime_id);
	coffer_channel *rd[MAX_READERS];
	for (int i = 0; i < n_readers; i++)
		rd[i] = open_channel(readers[i], runtime);

	size_t n = (size_t)rounds * (size_t)n_readers;
	double *write_ms = calloc(n, sizeof(double)), *revoke_ms = calloc(n, sizeof(double));
	size_t nw = 0, nr = 0;
	int exact = 0, asked = 0, lost = 0;
	char v[64];
	for (int round = 0; round < rounds; round++) {
		for (int i = 0; i < n_readers; i++) /* from their caches */
			for (int k = 0; k < 2; k++)
				resolve(rd[i], project, 0, v);
		char want[64];
		snprintf(want, sizeof(want), "v-%d", round);
		write_s(admin, project, want);
		double t0 = now_ms();
		for (int i = 0; i < n_readers; i++) {
			double seen = poll_until(rd[i], project, want, 0, t0);
			if (seen < 0)
				lost++;
			else
				write_ms[nw++] = seen;
		}
		/* exactly, with min_revision, on the next write */
		snprintf(want, sizeof(want), "w-%d", round);
		int64_t rev = write_s(admin, project, want);
		for (int i = 0; i < n_readers; i++) {
			asked++;
			exact += resolve(rd[i], project, rev, v) == 0 && strcmp(v, want) == 0;
		}
	}
	/* watches on every replica (before the revocations: their refusals count against this
	 * address's limit of calls without a valid token) */
	coffer_watch *w[MAX_READERS + 1];
	coffer_channel *wc[MAX_READERS + 1];
	int n_w = 0;
	for (int i = 0; i <= n_readers; i++) {
		wc[n_w] = open_channel(i == 0 ? writer : readers[i - 1], runtime);
		must(coffer_watch_open(wc[n_w], project, "main", COFFER_VERSION_LIVE, NULL, 0, 0,
		                       &w[n_w], &err),
		     &err, "watch");
		coffer_change ch;
		must(coffer_watch_next(w[n_w], 0, &ch, &err) < 0, &err, "watch");
		n_w++;
	}
	usleep(300000); /* the streams are open */
	double *watch_ms = calloc((size_t)rounds * (size_t)n_w, sizeof(double));
	size_t nwatch = 0;
	lost += watch_rounds(admin, project, w, n_w, rounds, watch_ms, &nwatch);
	for (int i = 0; i < n_w; i++) {
		coffer_watch_close(w[i]);
		coffer_channel_free(wc[i]);
	}
	double x50 = pct(watch_ms, nwatch, 0.5), x99 = pct(watch_ms, nwatch, 0.99),
	       xmax = pct(watch_ms, nwatch, 1.0);
	free(watch_ms);
	/* revocations */
	for (int round = 0; round < rounds; round++) {
		char secret[128], id[32];
		mint(admin, project, secret, id);
		coffer_channel *t[MAX_READERS];
		for (int i = 0; i < n_readers; i++) {
			t[i] = open_channel(readers[i], secret);
			for (int k = 0; k < 2; k++)
				resolve(t[i], project, 0, v);
		}
		Coffer__V1__RevokeTokenRequest rq = COFFER__V1__REVOKE_TOKEN_REQUEST__INIT;
		rq.id = id;
		Google__Protobuf__Empty *empty = NULL;
		must(coffer_v1_access_revoke_token(admin, &rq, &empty, &err), &err, "revoke");
		protobuf_c_message_free_unpacked(&empty->base, NULL);
		double t0 = now_ms();
		for (int i = 0; i < n_readers; i++) {
			double seen = poll_until(t[i], project, NULL, COFFER_UNAUTHENTICATED, t0);
			if (seen < 0)
				lost++;
			else
				revoke_ms[nr++] = seen;
			coffer_channel_free(t[i]);
		}
	}
	double w50 = pct(write_ms, nw, 0.5), w99 = pct(write_ms, nw, 0.99),
	       wmax = pct(write_ms, nw, 1.0);
	double r50 = pct(revoke_ms, nr, 0.5), r99 = pct(revoke_ms, nr, 0.99),
	       rmax = pct(revoke_ms, nr, 1.0);
	printf("%-28s write seen elsewhere: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%zu); "
	       "min_revision exact %d/%d\n",
	       "replicas", w50, w99, wmax, nw, exact, asked);
	printf("%-28s revoked token refused elsewhere: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
	       "(%zu)%s\n",
	       "replicas", r50, r99, rmax, nr, lost ? "; SOME NEVER CONVERGED" : "");
	printf("%-28s a write's event on every replica's watch: p50 %.1f ms, p99 %.1f ms, max "
	       "%.1f ms (%zu)\n",
	       "replicas", x50, x99, xmax, nwatch);
	printf("RESULT label=replicas write_p50_ms=%.2f write_p99_ms=%.2f write_max_ms=%.2f "
	       "exact=%d/%d revoke_p50_ms=%.2f revoke_p99_ms=%.2f revoke_max_ms=%.2f "
	       "watch_p50_ms=%.2f watch_p99_ms=%.2f watch_max_ms=%.2f lost=%d\n",
	       w50, w99, wmax, exact, asked, r50, r99, rmax, x50, x99, xmax, lost);
	for (int i = 0; i < n_readers; i++)
		coffer_channel_free(rd[i]);
	coffer_channel_free(admin);
	free(write_ms);
	free(revoke_ms);
	return lost || exact != asked ? 1 : 0;
}
