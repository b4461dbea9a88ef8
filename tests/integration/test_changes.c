/*
 * test_changes.c - Secrets/ApplyChanges against real servers and PostgreSQL: every kind of change
 * in one set at one revision (what resolves see after it, the results, one audit row per change);
 * all or nothing (a bad change in the middle leaves nothing, and its index and secret are named);
 * the project's compare-and-set; a dry run that reports and writes nothing; two changes of the
 * same thing refused; restricted stays restricted; roles checked as the single calls are; the
 * limits; and a resolver looping while user/password pairs are rotated never sees a mixed pair.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "coffer/v1/access.stub.h"
#include "coffer/v1/environments.stub.h"
#include "coffer/v1/secrets.stub.h"
#include "helpers.h"

#define DRAFT COFFER__V1__VERSION__VERSION_DRAFT
#define LIVE  COFFER__V1__VERSION__VERSION_LIVE

/* A change set under construction (messages in static-sized arrays). */
struct set {
	Coffer__V1__ApplyChangesRequest req;
	Coffer__V1__Change *ptrs[1100];
	Coffer__V1__Change ch[1100];
	Coffer__V1__CreateSecretChange create[1100];
	Coffer__V1__UpdateSecretChange update[16];
	Coffer__V1__DeleteSecretChange del[16];
	Coffer__V1__SetOverrideChange set[16];
	Coffer__V1__DeleteOverrideChange unset[16];
	size_t n, nc, nu, nd, ns, nx;
};

static struct set *set_new(const char *project)
{
	struct set *s = calloc(1, sizeof(*s));
	coffer__v1__apply_changes_request__init(&s->req);
	s->req.project = (char *)project;
	s->req.changes = s->ptrs;
	return s;
}

static Coffer__V1__Change *next(struct set *s)
{
	Coffer__V1__Change *c = &s->ch[s->n];
	coffer__v1__change__init(c);
	s->ptrs[s->n++] = c;
	s->req.n_changes = s->n;
	return c;
}

static void add_create(struct set *s, const char *name, const char *value, int vis)
{
	Coffer__V1__CreateSecretChange *x = &s->create[s->nc++];
	coffer__v1__create_secret_change__init(x);
	x->name = (char *)name;
	x->value = (char *)value;
	x->visibility = vis;
	x->description = "";
	Coffer__V1__Change *c = next(s);
	c->change_case = COFFER__V1__CHANGE__CHANGE_CREATE_SECRET;
	c->create_secret = x;
}

static void add_update(struct set *s, const char *name, const char *value, int vis)
{
	Coffer__V1__UpdateSecretChange *x = &s->update[s->nu++];
	coffer__v1__update_secret_change__init(x);
	x->name = (char *)name;
	if (value) {
		x->value_update_case = COFFER__V1__UPDATE_SECRET_CHANGE__VALUE_UPDATE_VALUE;
		x->value = (char *)value;
	}
	x->visibility = vis;
	Coffer__V1__Change *c = next(s);
	c->change_case = COFFER__V1__CHANGE__CHANGE_UPDATE_SECRET;
	c->update_secret = x;
}

static void add_delete(struct set *s, const char *name)
{
	Coffer__V1__DeleteSecretChange *x = &s->del[s->nd++];
	coffer__v1__delete_secret_change__init(x);
	x->name = (char *)name;
	Coffer__V1__Change *c = next(s);
	c->change_case = COFFER__V1__CHANGE__CHANGE_DELETE_SECRET;
	c->delete_secret = x;
}

static void add_override(struct set *s, const char *env, int version, const char *secret,
                         const char *value)
{
	Coffer__V1__Change *c = next(s);
	if (value) {
		Coffer__V1__SetOverrideChange *x = &s->set[s->ns++];
		coffer__v1__set_override_change__init(x);
		x->environment = (char *)env;
		x->version = version;
		x->secret = (char *)secret;
		x->value = (char *)value;
		c->change_case = COFFER__V1__CHANGE__CHANGE_SET_OVERRIDE;
		c->set_override = x;
	} else {
		Coffer__V1__DeleteOverrideChange *x = &s->unset[s->nx++];
		coffer__v1__delete_override_change__init(x);
		x->environment = (char *)env;
		x->version = version;
		x->secret = (char *)secret;
		c->change_case = COFFER__V1__CHANGE__CHANGE_DELETE_OVERRIDE;
		c->delete_override = x;
	}
}

/* Applies s through c: the code; *out (may be NULL) the response; err's message in msg. */
static int apply(coffer_channel *c, struct set *s, Coffer__V1__ApplyChangesResponse **out,
                 char *msg, size_t cap)
{
	Coffer__V1__ApplyChangesResponse *r = NULL;
	coffer_error err = {0};
	int rc = coffer_v1_secrets_apply_changes(c, &s->req, &r, &err);
	if (msg)
		snprintf(msg, cap, "%s", rc == 0 ? "" : err.message);
	if (rc == 0 && out)
		*out = r;
	else if (rc == 0)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	return rc == 0 ? 0 : err.code;
}

static int64_t secret_revision(const char *p, const char *name)
{
	const char *vals[2] = {p, name};
	PGresult *r = sql("SELECT s.revision FROM secrets s JOIN projects p ON p.id = s.project_id "
	                  "WHERE p.name = $1 AND s.name = $2 AND s.deleted_rev IS NULL",
	                  2, vals);
	int64_t rev = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	return rev;
}

START_TEST(every_kind_of_change_in_one_revision)
{
	const char *p = uniq("cset");
	create_project(p);
	must_create_secret(p, "OLD", "old-1", COFFER__V1__VISIBILITY__VISIBILITY_MASKED);
	must_create_secret(p, "GONE", "gone-1", COFFER__V1__VISIBILITY__VISIBILITY_MASKED);
	env_create(p, "staging");
	coffer_error err;
	ck_assert_int_eq(set_override(p, "staging", DRAFT, "OLD", "old-staging", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "staging", LIVE, "GONE", "gone-live", 0, &err), 0);
	int64_t before = project_revision(p);
	struct set *s = set_new(p);
	s->req.expected_revision = before;
	add_create(s, "NEW", "new-1", 0);
	add_update(s, "OLD", "old-2", COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
	add_override(s, "staging", DRAFT, "OLD", "old-staging-2"); /* replaces one */
	add_override(s, "staging", DRAFT, "NEW", "new-staging");   /* on a secret made above */
	add_override(s, "staging", LIVE, "GONE", NULL);
	add_delete(s, "GONE");
	Coffer__V1__ApplyChangesResponse *r = NULL;
	char msg[512];
	ck_assert_msg(apply(ch, s, &r, msg, sizeof(msg)) == 0, "%s", msg);
	ck_assert_int_eq(r->revision, before + 1);
	ck_assert(r->applied);
	ck_assert_int_eq(project_revision(p), before + 1);
	ck_assert_int_eq(r->n_results, 6);
	static const struct {
		int kind;
		const char *secret, *env;
		int version;
	} want[] = {
	        {COFFER__V1__CHANGE_KIND__CHANGE_KIND_ADDED, "NEW", "", 0},
	        {COFFER__V1__CHANGE_KIND__CHANGE_KIND_CHANGED, "OLD", "", 0},
	        {COFFER__V1__CHANGE_KIND__CHANGE_KIND_CHANGED, "OLD", "staging", DRAFT},
	        {COFFER__V1__CHANGE_KIND__CHANGE_KIND_ADDED, "NEW", "staging", DRAFT},
	        {COFFER__V1__CHANGE_KIND__CHANGE_KIND_REMOVED, "GONE", "staging", LIVE},
	        {COFFER__V1__CHANGE_KIND__CHANGE_KIND_REMOVED, "GONE", "", 0},
	};
	for (size_t i = 0; i < 6; i++) {
		ck_assert_int_eq(r->results[i]->index, (int)i);
		ck_assert_int_eq(r->results[i]->kind, want[i].kind);
		ck_assert_str_eq(r->results[i]->secret, want[i].secret);
		ck_assert_str_eq(r->results[i]->environment, want[i].env);
		ck_assert_int_eq(r->results[i]->version, want[i].version);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* What resolves see: every change, and every row at the one new revision. */
	struct resolved res;
	resolve_into(p, "staging", DRAFT, 0, &res);
	ck_assert_str_eq(resolved_value(&res, "NEW"), "new-staging");
	ck_assert_str_eq(resolved_value(&res, "OLD"), "old-staging-2");
	ck_assert_ptr_null(resolved_value(&res, "GONE"));
	resolved_clear(&res);
	resolve_into(p, "main", LIVE, 0, &res);
	ck_assert_str_eq(resolved_value(&res, "NEW"), "new-1");
	ck_assert_str_eq(resolved_value(&res, "OLD"), "old-2");
	resolved_clear(&res);
	ck_assert_int_eq(secret_revision(p, "NEW"), before + 1);
	ck_assert_int_eq(secret_revision(p, "OLD"), before + 1);
	ck_assert_int_eq(secret_revision(p, "GONE"), -1);
	/* The state before the set is still there, at its revision. */
	resolve_into(p, "staging", LIVE, before, &res);
	ck_assert_str_eq(resolved_value(&res, "GONE"), "gone-live");
	resolved_clear(&res);
	/* One audit row per change, committed with them, never a value. */
	const char *vals[1] = {p};
	PGresult *a = sql("SELECT count(*), min(revision), max(revision), count(DISTINCT secret), "
	                  "count(*) FILTER (WHERE secret LIKE '%-%') FROM audit_events "
	                  "WHERE project = $1 AND method = '/coffer.v1.Secrets/ApplyChanges'",
	                  1, vals);
	ck_assert_str_eq(PQgetvalue(a, 0, 0), "6");
	ck_assert_int_eq(atoll(PQgetvalue(a, 0, 1)), before + 1);
	ck_assert_int_eq(atoll(PQgetvalue(a, 0, 2)), before + 1);
	ck_assert_str_eq(PQgetvalue(a, 0, 3), "3");
	ck_assert_str_eq(PQgetvalue(a, 0, 4), "0");
	PQclear(a);
	free(s);
}
END_TEST

START_TEST(all_or_nothing_and_the_failing_change_is_named)
{
	const char *p = uniq("cfail");
	create_project(p);
	must_create_secret(p, "A", "a-1", COFFER__V1__VISIBILITY__VISIBILITY_MASKED);
	must_create_secret(p, "R", "r-1", COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
	int64_t before = project_revision(p);
	/* What each case below ends in, and how the refused change is named. */
	struct {
		int code;
		const char *names;
	} cases[] = {
	        {COFFER_NOT_FOUND, "change 2 (secret MISSING)"},
	        {COFFER_ALREADY_EXISTS, "change 1 (secret A)"},
	        {COFFER_FAILED_PRECONDITION, "change 1 (secret R)"},
	        {COFFER_NOT_FOUND, "change 1 (secret A)"},
	        {COFFER_INVALID_ARGUMENT, "change 2 (secret A)"},
	        {COFFER_INVALID_ARGUMENT, "change 1 (secret bad name)"},
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct set *s = set_new(p);
		add_create(s, "FIRST", "first-value", 0);
		switch (k) {
		case 0: /* a change in the middle names a missing secret */
			add_update(s, "A", "a-2", 0);
			add_update(s, "MISSING", "x", 0);
			add_create(s, "LAST", "last", 0);
			break;
		case 1:
			add_create(s, "A", "again", 0);
			break;
		case 2: /* restricted stays restricted */
			add_update(s, "R", NULL, COFFER__V1__VISIBILITY__VISIBILITY_MASKED);
			break;
		case 3: /* an override in an environment that does not exist */
			add_override(s, "nowhere", DRAFT, "A", "v");
			break;
		case 4: /* two changes of the same secret */
			add_update(s, "A", "a-2", 0);
			add_delete(s, "A");
			break;
		case 5:
			add_create(s, "bad name", "v", 0);
			break;
		}
		char msg[512];
		ck_assert_int_eq(apply(ch, s, NULL, msg, sizeof(msg)), cases[k].code);
		ck_assert_msg(strstr(msg, cases[k].names) != NULL, "case %zu: %s", k, msg);
		ck_assert_ptr_null(strstr(msg, "first-value"));
		ck_assert_int_eq(project_revision(p), before);
		ck_assert_int_eq(secret_revision(p, "FIRST"), -1);
		free(s);
	}
	struct resolved res;
	resolve_into(p, "main", LIVE, 0, &res);
	ck_assert_str_eq(resolved_value(&res, "A"), "a-1");
	resolved_clear(&res);
}
END_TEST

START_TEST(compare_and_set_and_dry_run)
{
	const char *p = uniq("ccas");
	create_project(p);
	must_create_secret(p, "A", "a-1", COFFER__V1__VISIBILITY__VISIBILITY_MASKED);
	int64_t before = project_revision(p);
	struct set *s = set_new(p);
	add_update(s, "A", "a-2", 0);
	add_create(s, "B", "b-1", 0);
	s->req.expected_revision = before - 1;
	char msg[512];
	ck_assert_int_eq(apply(ch, s, NULL, msg, sizeof(msg)), COFFER_ABORTED);
	ck_assert_int_eq(project_revision(p), before);
	/* A dry run: the results and the revision it would write, and nothing written. */
	s->req.expected_revision = before;
	s->req.dry_run = true;
	Coffer__V1__ApplyChangesResponse *r = NULL;
	ck_assert_msg(apply(ch, s, &r, msg, sizeof(msg)) == 0, "%s", msg);
	ck_assert(!r->applied);
	ck_assert_int_eq(r->revision, before + 1);
	ck_assert_int_eq(r->n_results, 2);
	ck_assert_int_eq(r->results[1]->kind, COFFER__V1__CHANGE_KIND__CHANGE_KIND_ADDED);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	ck_assert_int_eq(project_revision(p), before);
	ck_assert_int_eq(secret_revision(p, "B"), -1);
	/* A dry run checks what the real one would: a missing secret fails it too. */
	add_delete(s, "MISSING");
	ck_assert_int_eq(apply(ch, s, NULL, msg, sizeof(msg)), COFFER_NOT_FOUND);
	s->req.n_changes = 2;
	s->n = 2;
	/* Then for real, at the expected revision. */
	s->req.dry_run = false;
	ck_assert_msg(apply(ch, s, &r, msg, sizeof(msg)) == 0, "%s", msg);
	ck_assert(r->applied);
	ck_assert_int_eq(r->revision, before + 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* The same expected revision again is stale now. */
	ck_assert_int_eq(apply(ch, s, NULL, msg, sizeof(msg)), COFFER_ABORTED);
	free(s);
}
END_TEST

START_TEST(limits)
{
	const char *p = uniq("climit");
	create_project(p);
	int64_t before = project_revision(p);
	struct set *s = set_new(p);
	char(*names)[16] = calloc(1001, 16);
	for (int i = 0; i < 1001; i++) {
		snprintf(names[i], 16, "S_%d", i);
		add_create(s, names[i], "v", 0);
	}
	char msg[512];
	ck_assert_int_eq(apply(ch, s, NULL, msg, sizeof(msg)), COFFER_RESOURCE_EXHAUSTED);
	ck_assert_ptr_nonnull(strstr(msg, "at most 1000"));
	free(s);
	/* Values over 2 MiB in one set: 40 of 60 KB. */
	s = set_new(p);
	char *big = malloc(60001);
	memset(big, 'x', 60000);
	big[60000] = '\0';
	for (int i = 0; i < 40; i++)
		add_create(s, names[i], big, 0);
	ck_assert_int_eq(apply(ch, s, NULL, msg, sizeof(msg)), COFFER_RESOURCE_EXHAUSTED);
	ck_assert_ptr_nonnull(strstr(msg, "at most"));
	ck_assert_ptr_null(strstr(msg, "xxxx"));
	/* An empty set is refused, and so is a change with nothing in it. */
	free(s);
	s = set_new(p);
	ck_assert_int_eq(apply(ch, s, NULL, msg, sizeof(msg)), COFFER_INVALID_ARGUMENT);
	next(s);
	ck_assert_int_eq(apply(ch, s, NULL, msg, sizeof(msg)), COFFER_INVALID_ARGUMENT);
	ck_assert_int_eq(project_revision(p), before);
	free(s);
	free(big);
	free(names);
}
END_TEST

START_TEST(each_change_is_checked_against_the_callers_role)
{
	struct settings c2 = cfg;
	char addr[64];
	struct server *a = start_replica(&c2, addr, sizeof(addr));
	const char *p = uniq("crole"), *other = uniq("cother");
	project_with(addr, p, "s");
	project_with(addr, other, "s");
	struct {
		int role;
		const char *project;
		int want;
	} cases[] = {
	        {COFFER__V1__ROLE__ROLE_EDITOR, NULL, COFFER_OK},
	        {COFFER__V1__ROLE__ROLE_VIEWER, NULL, COFFER_PERMISSION_DENIED},
	        {COFFER__V1__ROLE__ROLE_RUNTIME, NULL, COFFER_PERMISSION_DENIED},
	        {COFFER__V1__ROLE__ROLE_EDITOR, "other", COFFER_PERMISSION_DENIED},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char tok[128];
		token_for(addr, cases[i].project ? other : p, cases[i].role, NULL, 0, tok, NULL);
		coffer_channel *c = to(addr, tok, 20000);
		struct set *s = set_new(p);
		char name[16];
		snprintf(name, sizeof(name), "N_%zu", i);
		add_create(s, name, "v", 0);
		add_update(s, "S", "by-set", 0);
		char msg[512];
		ck_assert_msg(apply(c, s, NULL, msg, sizeof(msg)) == cases[i].want, "case %zu: %s",
		              i, msg);
		free(s);
		coffer_channel_free(c);
	}
	server_stop(a, 1);
}
END_TEST

/* ---- a resolver never sees half of a rotated pair ---- */

struct looper {
	const char *project;
	atomic_bool stop;
	int reads, mixed;
	char seen[64];
};

static void *resolve_loop(void *arg)
{
	struct looper *l = arg;
	coffer_channel *c = channel(20000);
	while (!atomic_load(&l->stop)) {
		Coffer__V1__ResolveSecretsRequest req = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
		req.project = (char *)l->project;
		req.environment = "main";
		req.version = LIVE;
		Coffer__V1__ResolveSecretsResponse *r = NULL;
		coffer_error err;
		if (coffer_v1_secrets_resolve_secrets(c, &req, &r, &err) != 0)
			continue;
		const char *user = "", *pass = "";
		for (size_t i = 0; i < r->n_secrets; i++) {
			if (strcmp(r->secrets[i]->name, "DB_USER") == 0)
				user = r->secrets[i]->value;
			if (strcmp(r->secrets[i]->name, "DB_PASSWORD") == 0)
				pass = r->secrets[i]->value;
		}
		/* user-N goes with password-N */
		if (strcmp(user + 4, pass + 8) != 0 && l->mixed++ == 0)
			snprintf(l->seen, sizeof(l->seen), "%s / %s", user, pass);
		l->reads++;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	coffer_channel_free(c);
	return NULL;
}

START_TEST(a_resolver_never_sees_a_mixed_pair_and_a_watcher_gets_one_change)
{
	const char *p = uniq("cpair");
	create_project(p);
	must_create_secret(p, "DB_USER", "user0", COFFER__V1__VISIBILITY__VISIBILITY_MASKED);
	must_create_secret(p, "DB_PASSWORD", "password0",
	                   COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
	struct looper l = {.project = p};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, resolve_loop, &l);
	char user[16], pass[24];
	for (int i = 1; i <= 60; i++) {
		struct set *s = set_new(p);
		snprintf(user, sizeof(user), "user%d", i);
		snprintf(pass, sizeof(pass), "password%d", i);
		add_update(s, "DB_USER", user, 0);
		add_update(s, "DB_PASSWORD", pass, 0);
		char msg[512];
		ck_assert_msg(apply(ch, s, NULL, msg, sizeof(msg)) == 0, "%s", msg);
		free(s);
	}
	atomic_store(&l.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* A watcher gets the pair as one change, at the set's one revision. */
	coffer_watch *w = NULL;
	coffer_error err;
	int64_t at = project_revision(p);
	ck_assert_int_eq(
	        coffer_watch_open(ch, p, "main", COFFER_VERSION_LIVE, NULL, 0, at, &w, &err), 0);
	coffer_change chg;
	ck_assert_int_eq(coffer_watch_next(w, 200, &chg, &err), 0); /* nothing since `at` */
	struct set *s = set_new(p);
	add_update(s, "DB_USER", "user-last", 0);
	add_update(s, "DB_PASSWORD", "password-last", 0);
	char msg[512];
	ck_assert_msg(apply(ch, s, NULL, msg, sizeof(msg)) == 0, "%s", msg);
	free(s);
	ck_assert_int_eq(coffer_watch_next(w, 5000, &chg, &err), 1);
	ck_assert_int_eq(chg.revision, at + 1);
	ck_assert_uint_eq(chg.n_changed, 2);
	ck_assert_str_eq(chg.changed[0], "DB_PASSWORD");
	ck_assert_str_eq(chg.changed[1], "DB_USER");
	coffer_watch_close(w);
	ck_assert_int_gt(l.reads, 60);
	ck_assert_msg(l.mixed == 0, "%d of %d resolves saw a mixed pair, first: %s", l.mixed,
	              l.reads, l.seen);
}
END_TEST

/* Change sets written at once into one project: each is one revision of its own, gapless. Its
 * audit rows share its transaction, so they may not commit it before its revision is written
 * (which let a second set take the same revision). */
struct racer {
	const char *project; /* where */
	int id;              /* which writer */
	int64_t revs[10];    /* the revisions answered */
	int code;            /* the first failure's code (0: none) */
	char msg[256];       /* and its message */
};

static void *race_sets(void *arg)
{
	struct racer *r = arg;
	coffer_channel *c = channel(20000);
	for (int i = 0; i < 10; i++) {
		struct set *s = set_new(r->project);
		char name[32];
		snprintf(name, sizeof(name), "R_%d_%d", r->id, i);
		add_create(s, name, "v", 0);
		add_update(s, "BASE", name, 0);
		Coffer__V1__ApplyChangesResponse *resp = NULL;
		r->code = apply(c, s, &resp, r->msg, sizeof(r->msg));
		free(s);
		if (r->code != 0)
			break;
		r->revs[i] = resp->revision;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	coffer_channel_free(c);
	return NULL;
}

START_TEST(concurrent_change_sets_take_one_revision_each)
{
	const char *p = uniq("race");
	create_project(p);
	must_create_secret(p, "BASE", "v", 0);
	int64_t start = project_revision(p);
	enum { WRITERS = 6 };
	struct racer r[WRITERS];
	pthread_t t[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		r[i] = (struct racer){.project = p, .id = i};
		pthread_create(&t[i], NULL, race_sets, &r[i]);
	}
	bool seen[WRITERS * 10 + 1] = {false};
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < WRITERS; i++) {
		ck_assert_msg(r[i].code == 0, "writer %d: code %d: %s", i, r[i].code, r[i].msg);
		for (int k = 0; k < 10; k++) {
			int64_t off = r[i].revs[k] - start;
			ck_assert_msg(off >= 1 && off <= WRITERS * 10, "revision %lld out of range",
			              (long long)r[i].revs[k]);
			ck_assert_msg(!seen[off], "two change sets answered revision %lld",
			              (long long)r[i].revs[k]);
			seen[off] = true;
		}
	}
	ck_assert_int_eq(project_revision(p), start + WRITERS * 10);
}
END_TEST

TCase *tcase_changes(void)
{
	TCase *tc = tcase_create("changes");
	tcase_set_timeout(tc, 120);
	test_add(tc, every_kind_of_change_in_one_revision);
	test_add(tc, all_or_nothing_and_the_failing_change_is_named);
	test_add(tc, compare_and_set_and_dry_run);
	test_add(tc, limits);
	test_add(tc, each_change_is_checked_against_the_callers_role);
	test_add(tc, a_resolver_never_sees_a_mixed_pair_and_a_watcher_gets_one_change);
	test_add(tc, concurrent_change_sets_take_one_revision_each);
	return tc;
}
