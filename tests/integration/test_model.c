/*
 * test_model.c - a model-based test: a few hundred random operations (secrets, overrides,
 * environments, merges) each checked against a reference model kept here, the project revision
 * included; then every past revision checked with at_revision. And a concurrency test: resolvers
 * running during merges never see a half-merged target.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_run.h"
#include "helpers.h"

#define N_SECRETS 5
#define N_ENVS    3
#define N_OPS     260
#define VAL_MAX   32

static const char *const SECRET[N_SECRETS] = {"K0", "K1", "K2", "K3", "K4"};
static const char *const ENV[N_ENVS] = {"main", "e1", "e2"};

struct model {
	bool secret[N_SECRETS];                        /* exists */
	char value[N_SECRETS][VAL_MAX];                /* project default */
	bool env[N_ENVS];                              /* exists */
	bool ovr[N_ENVS][2][N_SECRETS];                /* override exists (version 1, 2) */
	char ovr_value[N_ENVS][2][N_SECRETS][VAL_MAX]; /* its value */
	int64_t rev;                                   /* project revision */
};

static struct model history[N_OPS + 2];

static unsigned rng_state;
static unsigned rnd(unsigned n)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return (rng_state >> 8) % n;
}

/* Operation kinds, weighted: creates, updates, deletes, overrides set/deleted, merges, envs. */
static int pick_kind(void)
{
	static const int weight[8] = {3, 3, 1, 5, 2, 3, 2, 1};
	int r = (int)rnd(20);
	for (int kind = 0; kind < 8; kind++) {
		if (r < weight[kind])
			return kind;
		r -= weight[kind];
	}
	return 0;
}

/* A random index whose flag is set, or fallback when none is. */
static int pick(const bool *flags, int n, int fallback)
{
	int start = (int)rnd((unsigned)n);
	for (int i = 0; i < n; i++)
		if (flags[(start + i) % n])
			return (start + i) % n;
	return fallback;
}

/* Every existing (environment, version) resolves to what the model says. */
static void check_state(const char *p, const struct model *m, int64_t at)
{
	for (int e = 0; e < N_ENVS; e++) {
		for (int v = 0; v < 2; v++) {
			if (!m->env[e]) {
				ck_assert_msg(resolve_code(p, ENV[e], v + 1, at) == 5,
				              "%s should not exist at %ld", ENV[e], (long)at);
				continue;
			}
			struct resolved r;
			resolve_into(p, ENV[e], v + 1, at, &r);
			ck_assert_int_eq(r.resp->revision, m->rev);
			size_t n = 0;
			for (int k = 0; k < N_SECRETS; k++) {
				if (!m->secret[k]) {
					ck_assert_ptr_null(resolved_value(&r, SECRET[k]));
					continue;
				}
				n++;
				bool o = m->ovr[e][v][k];
				const char *want = o ? m->ovr_value[e][v][k] : m->value[k];
				const char *got = resolved_value(&r, SECRET[k]);
				ck_assert_msg(got && strcmp(got, want) == 0,
				              "rev %ld %s/%d %s: got %s, want %s", (long)m->rev,
				              ENV[e], v + 1, SECRET[k], got ? got : "(none)", want);
				ck_assert_int_eq(resolved_source(&r, SECRET[k]), o ? 2 : 1);
			}
			ck_assert_uint_eq(r.resp->n_secrets, n);
			resolved_clear(&r);
		}
	}
}

/* Applies a merge to the model; returns the number of changes and fills the live count. */
static int model_merge(struct model *m, int src, int dst, bool apply, int *live)
{
	int changes = 0;
	*live = 0;
	for (int v = 0; v < 2; v++) {
		for (int k = 0; k < N_SECRETS; k++) {
			bool so = m->ovr[src][v][k], dov = m->ovr[dst][v][k];
			*live += v == 1 && so;
			if (so != dov ||
			    (so && strcmp(m->ovr_value[src][v][k], m->ovr_value[dst][v][k])))
				changes++;
			if (apply) {
				m->ovr[dst][v][k] = so;
				memcpy(m->ovr_value[dst][v][k], m->ovr_value[src][v][k], VAL_MAX);
			}
		}
	}
	return changes;
}

START_TEST(random_operations_match_the_model)
{
	const char *p = uniq("model");
	create_project(p);
	const char *seed_env = getenv("COFFER_MODEL_SEED");
	rng_state = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
	printf("model test seed %u (set COFFER_MODEL_SEED to replay)\n", rng_state);
	struct model m = {0};
	m.env[0] = true;
	m.rev = 1;
	history[1] = m;
	int counts[8] = {0};
	for (int op = 0; op < N_OPS; op++) {
		int kind = pick_kind(), k = (int)rnd(N_SECRETS), e = (int)rnd(N_ENVS),
		    v = (int)rnd(2);
		/* Mostly aim at what exists, so that most operations write. */
		if (kind != 0 && kind != 6 && rnd(4) != 0)
			k = pick(m.secret, N_SECRETS, k);
		if (kind != 6 && rnd(4) != 0)
			e = pick(m.env, N_ENVS, e);
		char val[VAL_MAX];
		snprintf(val, sizeof(val), "v%d-%u", op, rnd(1000));
		coffer_error err = {0};
		int want = 0, got = 0;
		bool wrote = false;
		counts[kind]++;
		switch (kind) {
		case 0: /* create secret */
			want = m.secret[k] ? 6 : 0;
			create_secret(p, SECRET[k], val, 0, &err);
			if (!want) {
				m.secret[k] = true;
				memcpy(m.value[k], val, VAL_MAX);
				wrote = true;
			}
			break;
		case 1: { /* update value */
			want = m.secret[k] ? 0 : 5;
			Coffer__V1__UpdateSecretRequest u = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
			u.project = (char *)p;
			u.name = (char *)SECRET[k];
			u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
			u.value = val;
			Coffer__V1__Secret *s = NULL;
			if (coffer_v1_secrets_update_secret(ch, &u, &s, &err) == 0)
				protobuf_c_message_free_unpacked(&s->base, NULL);
			if (!want) {
				memcpy(m.value[k], val, VAL_MAX);
				wrote = true;
			}
			break;
		}
		case 2: { /* delete secret: its overrides go with it */
			want = m.secret[k] ? 0 : 5;
			Coffer__V1__DeleteSecretRequest d = COFFER__V1__DELETE_SECRET_REQUEST__INIT;
			d.project = (char *)p;
			d.name = (char *)SECRET[k];
			Google__Protobuf__Empty *x = NULL;
			if (coffer_v1_secrets_delete_secret(ch, &d, &x, &err) == 0)
				protobuf_c_message_free_unpacked(&x->base, NULL);
			if (!want) {
				m.secret[k] = false;
				for (int ee = 0; ee < N_ENVS; ee++)
					m.ovr[ee][0][k] = m.ovr[ee][1][k] = false;
				wrote = true;
			}
			break;
		}
		case 3: /* set override */
			want = !m.env[e] || !m.secret[k] ? 5 : 0;
			set_override(p, ENV[e], v + 1, SECRET[k], val, 0, &err);
			if (!want) {
				m.ovr[e][v][k] = true;
				memcpy(m.ovr_value[e][v][k], val, VAL_MAX);
				wrote = true;
			}
			break;
		case 4: /* delete override */
			want = m.env[e] && m.secret[k] && m.ovr[e][v][k] ? 0 : 5;
			delete_override(p, ENV[e], v + 1, SECRET[k], 0, &err);
			if (!want) {
				m.ovr[e][v][k] = false;
				wrote = true;
			}
			break;
		case 5: { /* merge */
			int dst = (e + 1 + (int)rnd(N_ENVS - 1)) % N_ENVS;
			bool dry = rnd(5) == 0, del = e != 0 && rnd(6) == 0;
			want = !m.env[e] || !m.env[dst] ? 5 : 0;
			Coffer__V1__MergeEnvironmentResponse *r = NULL;
			merge(p, ENV[e], ENV[dst], dry, 0, 0, del, &r, &err);
			if (!want) {
				int live = 0;
				int changes = model_merge(&m, e, dst, false, &live);
				ck_assert_ptr_nonnull(r);
				ck_assert_int_eq((int)r->n_changes, changes);
				ck_assert_int_eq(r->live_overrides_applied, live);
				ck_assert_int_eq(r->applied, !dry);
				if (!dry && (changes || del)) {
					model_merge(&m, e, dst, true, &live);
					if (del) {
						m.env[e] = false;
						memset(m.ovr[e], 0, sizeof(m.ovr[e]));
					}
					wrote = true;
				}
				ck_assert_int_eq(r->revision, m.rev + wrote);
			}
			if (r)
				protobuf_c_message_free_unpacked(&r->base, NULL);
			break;
		}
		case 6: { /* create environment */
			if (e == 0)
				e = 1;
			want = m.env[e] ? 6 : 0;
			Coffer__V1__CreateEnvironmentRequest c =
			        COFFER__V1__CREATE_ENVIRONMENT_REQUEST__INIT;
			c.project = (char *)p;
			c.name = (char *)ENV[e];
			Coffer__V1__Environment *x = NULL;
			if (coffer_v1_environments_create_environment(ch, &c, &x, &err) == 0)
				protobuf_c_message_free_unpacked(&x->base, NULL);
			if (!want) {
				m.env[e] = true;
				memset(m.ovr[e], 0, sizeof(m.ovr[e]));
				wrote = true;
			}
			break;
		}
		case 7: { /* delete environment */
			want = e == 0 ? 9 : m.env[e] ? 0 : 5;
			Coffer__V1__DeleteEnvironmentRequest d =
			        COFFER__V1__DELETE_ENVIRONMENT_REQUEST__INIT;
			d.project = (char *)p;
			d.name = (char *)ENV[e];
			Google__Protobuf__Empty *x = NULL;
			if (coffer_v1_environments_delete_environment(ch, &d, &x, &err) == 0)
				protobuf_c_message_free_unpacked(&x->base, NULL);
			if (!want) {
				m.env[e] = false;
				memset(m.ovr[e], 0, sizeof(m.ovr[e]));
				wrote = true;
			}
			break;
		}
		}
		got = err.code;
		ck_assert_msg(got == want, "op %d (kind %d, %s %s v%d): got %s (%s), want %s", op,
		              kind, ENV[e], SECRET[k], v + 1, coffer_code_name(got), err.message,
		              coffer_code_name(want));
		if (wrote) {
			m.rev++;
			history[m.rev] = m;
		}
		ck_assert_int_eq(project_revision(p), m.rev);
		check_state(p, &m, 0);
	}
	/* Every past revision, as it was. */
	for (int64_t r = 1; r <= m.rev; r++)
		check_state(p, &history[r], r);
	printf("model test: %d operations, %ld revisions; creates %d, updates %d, deletes %d, "
	       "overrides set %d, deleted %d, merges %d, envs created %d, deleted %d\n",
	       N_OPS, (long)m.rev, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5],
	       counts[6], counts[7]);
	ck_assert_int_gt(m.rev, N_OPS / 4);
}
END_TEST

/* ---- resolvers during merges ---- */

#define C_SECRETS 12
#define C_MERGES  40

struct conc {
	const char *project; /* shared project */
	volatile int done;   /* the merger finished */
	int mixed;           /* snapshots that mixed two sources */
	int seen[3];         /* snapshots from default, blue, green */
	pthread_mutex_t mu;  /* guards the counters */
};

static void *resolver(void *arg)
{
	struct conc *c = arg;
	coffer_channel *own = channel(20000);
	for (int i = 0; !c->done || i < 5; i++) {
		Coffer__V1__ResolveSecretsRequest q = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
		q.project = (char *)c->project;
		q.environment = "main";
		q.version = 1 + i % 2;
		Coffer__V1__ResolveSecretsResponse *r = NULL;
		coffer_error err;
		if (coffer_v1_secrets_resolve_secrets(own, &q, &r, &err) != 0)
			continue;
		int kinds[3] = {0};
		for (size_t k = 0; k < r->n_secrets; k++) {
			const char *val = r->secrets[k]->value;
			kinds[strncmp(val, "blue", 4) == 0    ? 1
			      : strncmp(val, "green", 5) == 0 ? 2
			                                      : 0]++;
		}
		pthread_mutex_lock(&c->mu);
		int sources = (kinds[0] > 0) + (kinds[1] > 0) + (kinds[2] > 0);
		if (sources != 1 || r->n_secrets != C_SECRETS)
			c->mixed++;
		else
			c->seen[kinds[1] ? 1 : kinds[2] ? 2 : 0]++;
		pthread_mutex_unlock(&c->mu);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	coffer_channel_free(own);
	return NULL;
}

START_TEST(resolvers_never_see_a_half_merged_target)
{
	struct conc c = {.project = uniq("conc")};
	pthread_mutex_init(&c.mu, NULL);
	create_project(c.project);
	env_create(c.project, "blue");
	env_create(c.project, "green");
	coffer_error err;
	for (int k = 0; k < C_SECRETS; k++) {
		char name[16], v[32];
		snprintf(name, sizeof(name), "S%02d", k);
		snprintf(v, sizeof(v), "default-%d", k);
		must_create_secret(c.project, name, v, 0);
		for (int ver = 1; ver <= 2; ver++) {
			snprintf(v, sizeof(v), "blue-%d-%d", k, ver);
			ck_assert_int_eq(set_override(c.project, "blue", ver, name, v, 0, &err), 0);
			snprintf(v, sizeof(v), "green-%d-%d", k, ver);
			ck_assert_int_eq(set_override(c.project, "green", ver, name, v, 0, &err),
			                 0);
		}
	}
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, resolver, &c);
	for (int i = 0; i < C_MERGES; i++) {
		Coffer__V1__MergeEnvironmentResponse *m = NULL;
		ck_assert_int_eq(merge(c.project, i % 2 ? "green" : "blue", "main", false, 0, 0,
		                       false, &m, &err),
		                 0);
		ck_assert_uint_eq(m->n_changes, 2 * C_SECRETS);
		protobuf_c_message_free_unpacked(&m->base, NULL);
	}
	c.done = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("concurrent merges: %d merges; snapshots default %d, blue %d, green %d, mixed %d\n",
	       C_MERGES, c.seen[0], c.seen[1], c.seen[2], c.mixed);
	ck_assert_int_eq(c.mixed, 0);
	ck_assert_int_gt(c.seen[1] + c.seen[2], 0);
	pthread_mutex_destroy(&c.mu);
}
END_TEST

TCase *tcase_model(void)
{
	TCase *tc = tcase_create("model");
	tcase_set_timeout(tc, 300);
	test_add(tc, random_operations_match_the_model);
	test_add(tc, resolvers_never_see_a_half_merged_target);
	return tc;
}
