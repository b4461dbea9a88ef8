/*
 * test_envs.c - Environments, overrides and fallback across every (environment, version), merge
 * (dry run, changes, live count, compare-and-set, delete_source), and ResolveSecrets' codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "helpers.h"

#define DRAFT COFFER__V1__VERSION__VERSION_DRAFT
#define LIVE  COFFER__V1__VERSION__VERSION_LIVE

START_TEST(environments_crud_and_codes)
{
	const char *p = uniq("envs");
	create_project(p);
	Coffer__V1__CreateEnvironmentRequest c = COFFER__V1__CREATE_ENVIRONMENT_REQUEST__INIT;
	c.project = (char *)p;
	c.name = "staging";
	c.description = "pre-production";
	Coffer__V1__Environment *env = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_environments_create_environment(ch, &c, &env, &err), 0);
	ck_assert_str_eq(env->name, "staging");
	ck_assert_str_eq(env->description, "pre-production");
	ck_assert_int_eq(env->revision, 2);
	ck_assert_ptr_nonnull(env->create_time);
	protobuf_c_message_free_unpacked(&env->base, NULL);
	ck_assert_int_eq(project_revision(p), 2);
	EXPECT_CODE(coffer_v1_environments_create_environment(
	                    ch, &c, (Coffer__V1__Environment **)&resp_, &err_),
	            6);
	c.name = "Bad_Name";
	EXPECT_CODE(coffer_v1_environments_create_environment(
	                    ch, &c, (Coffer__V1__Environment **)&resp_, &err_),
	            3);
	c.name = "qa";
	c.project = (char *)uniq("nope");
	EXPECT_CODE(coffer_v1_environments_create_environment(
	                    ch, &c, (Coffer__V1__Environment **)&resp_, &err_),
	            5);

	Coffer__V1__GetEnvironmentRequest g = COFFER__V1__GET_ENVIRONMENT_REQUEST__INIT;
	g.project = (char *)p;
	g.name = "main";
	ck_assert_int_eq(coffer_v1_environments_get_environment(ch, &g, &env, &err), 0);
	ck_assert_int_eq(env->revision, 1);
	protobuf_c_message_free_unpacked(&env->base, NULL);
	g.name = "prod";
	EXPECT_CODE(coffer_v1_environments_get_environment(
	                    ch, &g, (Coffer__V1__Environment **)&resp_, &err_),
	            5);

	for (int i = 0; i < 5; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "e%d", i);
		env_create(p, nm);
	}
	/* list: every page, in name order, no duplicates */
	const char *want[] = {"e0", "e1", "e2", "e3", "e4", "main", "staging"};
	size_t seen = 0;
	char *token = strdup("");
	do {
		Coffer__V1__ListEnvironmentsRequest l = COFFER__V1__LIST_ENVIRONMENTS_REQUEST__INIT;
		l.project = (char *)p;
		l.page_size = 3;
		l.page_token = token;
		Coffer__V1__ListEnvironmentsResponse *r = NULL;
		ck_assert_int_eq(coffer_v1_environments_list_environments(ch, &l, &r, &err), 0);
		for (size_t i = 0; i < r->n_environments; i++, seen++) {
			ck_assert_uint_lt(seen, 7);
			ck_assert_str_eq(r->environments[i]->name, want[seen]);
		}
		free(token);
		token = strdup(r->next_page_token);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} while (*token);
	free(token);
	ck_assert_uint_eq(seen, 7);

	/* delete: main never; compare-and-set; gone; re-created fresh */
	Coffer__V1__DeleteEnvironmentRequest d = COFFER__V1__DELETE_ENVIRONMENT_REQUEST__INIT;
	d.project = (char *)p;
	d.name = "main";
	EXPECT_CODE(coffer_v1_environments_delete_environment(
	                    ch, &d, (Google__Protobuf__Empty **)&resp_, &err_),
	            9);
	must_create_secret(p, "TOKEN", "default", 0);
	ck_assert_int_eq(set_override(p, "staging", DRAFT, "TOKEN", "staging-draft", 0, &err), 0);
	int64_t staging_rev = env_revision(p, "staging");
	ck_assert_int_eq(staging_rev, project_revision(p));
	d.name = "staging";
	d.expected_revision = staging_rev - 1;
	EXPECT_CODE(coffer_v1_environments_delete_environment(
	                    ch, &d, (Google__Protobuf__Empty **)&resp_, &err_),
	            10);
	d.expected_revision = staging_rev;
	Google__Protobuf__Empty *empty = NULL;
	ck_assert_int_eq(coffer_v1_environments_delete_environment(ch, &d, &empty, &err), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
	g.name = "staging";
	EXPECT_CODE(coffer_v1_environments_get_environment(
	                    ch, &g, (Coffer__V1__Environment **)&resp_, &err_),
	            5);
	EXPECT_CODE(coffer_v1_environments_delete_environment(
	                    ch, &d, (Google__Protobuf__Empty **)&resp_, &err_),
	            5);
	ck_assert_int_eq(resolve_code(p, "staging", DRAFT, 0), 5);
	env_create(p, "staging");
	struct resolved r;
	resolve_into(p, "staging", DRAFT, 0, &r);
	ck_assert_str_eq(resolved_value(&r, "TOKEN"), "default");
	ck_assert_int_eq(resolved_source(&r, "TOKEN"), 1);
	resolved_clear(&r);
}
END_TEST

START_TEST(overrides_fall_back_per_environment_and_version)
{
	const char *p = uniq("ovr");
	create_project(p);
	must_create_secret(p, "A", "a-default", 0);
	must_create_secret(p, "B", "b-default", 0);
	must_create_secret(p, "R", "r-default", COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
	env_create(p, "staging");
	env_create(p, "dev");
	coffer_error err;
	ck_assert_int_eq(set_override(p, "staging", DRAFT, "A", "a-staging-draft", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "staging", LIVE, "B", "b-staging-live", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "main", LIVE, "A", "a-main-live", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "dev", DRAFT, "R", "r-dev-draft", 0, &err), 0);

	/* expected[env][version] for A, B, R */
	const char *envs[] = {"main", "staging", "dev"};
	const char *expect[3][2][3] = {
	        {{"a-default", "b-default", "r-default"},
	         {"a-main-live", "b-default", "r-default"}},
	        {{"a-staging-draft", "b-default", "r-default"},
	         {"a-default", "b-staging-live", "r-default"}},
	        {{"a-default", "b-default", "r-dev-draft"},
	         {"a-default", "b-default", "r-default"}},
	};
	const char *names[] = {"A", "B", "R"};
	for (int pass = 0; pass < 2; pass++) {
		for (int e = 0; e < 3; e++) {
			for (int v = 0; v < 2; v++) {
				struct resolved r;
				resolve_into(p, envs[e], v + 1, 0, &r);
				ck_assert_uint_eq(r.resp->n_secrets, 3);
				for (int k = 0; k < 3; k++) {
					const char *want = expect[e][v][k];
					ck_assert_msg(strcmp(resolved_value(&r, names[k]), want) ==
					                      0,
					              "%s/%d %s: %s != %s", envs[e], v + 1,
					              names[k], resolved_value(&r, names[k]), want);
					ck_assert_int_eq(resolved_source(&r, names[k]),
					                 strstr(want, "default") ? 1 : 2);
				}
				ck_assert_int_eq(r.resp->secrets[2]->visibility,
				                 COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
				resolved_clear(&r);
			}
		}
		if (pass == 0) {
			/* A default change is visible at once wherever A falls back, nowhere else.
			 */
			update_value(p, "A", "a-default-2");
			for (int e = 0; e < 3; e++)
				for (int v = 0; v < 2; v++)
					if (strcmp(expect[e][v][0], "a-default") == 0)
						expect[e][v][0] = "a-default-2";
		}
	}
	/* reveal agrees with resolve */
	Coffer__V1__RevealSecretRequest rv = COFFER__V1__REVEAL_SECRET_REQUEST__INIT;
	rv.project = (char *)p;
	rv.name = "B";
	rv.environment = "staging";
	rv.version = LIVE;
	Coffer__V1__RevealSecretResponse *rr = NULL;
	ck_assert_int_eq(coffer_v1_secrets_reveal_secret(ch, &rv, &rr, &err), 0);
	ck_assert_str_eq(rr->value, "b-staging-live");
	ck_assert_int_eq(rr->source, COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_OVERRIDE);
	protobuf_c_message_free_unpacked(&rr->base, NULL);

	/* codes */
	ck_assert_int_eq(set_override(p, "staging", DRAFT, "MISSING", "x", 0, &err), -1);
	ck_assert_int_eq(err.code, 5);
	ck_assert_int_eq(set_override(p, "prod", DRAFT, "A", "x", 0, &err), -1);
	ck_assert_int_eq(err.code, 5);
	ck_assert_int_eq(set_override(p, "staging", 0, "A", "x", 0, &err), -1);
	ck_assert_int_eq(err.code, 3);
	ck_assert_int_eq(set_override(p, "staging", DRAFT, "A", "\xc3\x28", 0, &err), -1);
	ck_assert_int_eq(err.code, 3);
	int64_t rev = project_revision(p);
	ck_assert_int_eq(set_override(p, "staging", DRAFT, "A", "x", 3, &err), -1);
	ck_assert_int_eq(err.code, 10);
	ck_assert_int_eq(project_revision(p), rev);
	int64_t cur = override_revision(p, "staging", DRAFT, "A");
	ck_assert_int_eq(set_override(p, "staging", DRAFT, "A", "a-staging-draft-2", cur, &err), 0);
	ck_assert_int_eq(override_revision(p, "staging", DRAFT, "A"), rev + 1);
	ck_assert_int_eq(env_revision(p, "staging"), rev + 1);
	ck_assert_int_eq(delete_override(p, "staging", LIVE, "A", 0, &err), -1);
	ck_assert_int_eq(err.code, 5);
	ck_assert_int_eq(delete_override(p, "staging", LIVE, "B", 1, &err), -1);
	ck_assert_int_eq(err.code, 10);
	ck_assert_int_eq(delete_override(p, "staging", LIVE, "B", 0, &err), 0);
	ck_assert_int_eq(env_revision(p, "staging"), rev + 2);
	struct resolved r;
	resolve_into(p, "staging", LIVE, 0, &r);
	ck_assert_str_eq(resolved_value(&r, "B"), "b-default");
	resolved_clear(&r);

	/* list: version filter and pages */
	ck_assert_int_eq(set_override(p, "staging", LIVE, "A", "a-live", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "staging", LIVE, "R", "r-live", 0, &err), 0);
	ck_assert_int_eq(count_overrides(p, "staging", 0, 1), 3);
	ck_assert_int_eq(count_overrides(p, "staging", 0, 1000), 3);
	ck_assert_int_eq(count_overrides(p, "staging", LIVE, 1), 2);
	ck_assert_int_eq(count_overrides(p, "staging", DRAFT, 2), 1);
	ck_assert_int_eq(count_overrides(p, "main", 0, 10), 1);
}
END_TEST

START_TEST(deleting_a_secret_removes_its_overrides)
{
	const char *p = uniq("delsec");
	create_project(p);
	must_create_secret(p, "GONE", "v1", 0);
	env_create(p, "staging");
	coffer_error err;
	ck_assert_int_eq(set_override(p, "staging", DRAFT, "GONE", "o-draft", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "main", LIVE, "GONE", "o-live", 0, &err), 0);
	Coffer__V1__DeleteSecretRequest d = COFFER__V1__DELETE_SECRET_REQUEST__INIT;
	d.project = (char *)p;
	d.name = "GONE";
	Google__Protobuf__Empty *e = NULL;
	ck_assert_int_eq(coffer_v1_secrets_delete_secret(ch, &d, &e, &err), 0);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	ck_assert_int_eq(count_overrides(p, "staging", 0, 10), 0);
	ck_assert_int_eq(count_overrides(p, "main", 0, 10), 0);
	must_create_secret(p, "GONE", "v2", 0);
	for (int v = 1; v <= 2; v++) {
		struct resolved r;
		resolve_into(p, v == 1 ? "staging" : "main", v, 0, &r);
		ck_assert_str_eq(resolved_value(&r, "GONE"), "v2");
		ck_assert_int_eq(resolved_source(&r, "GONE"), 1);
		resolved_clear(&r);
	}
	ck_assert_int_eq(count_overrides(p, "staging", 0, 10), 0);
}
END_TEST

START_TEST(merge_into_main)
{
	const char *p = uniq("merge");
	create_project(p);
	must_create_secret(p, "A", "a", 0);
	must_create_secret(p, "B", "b", 0);
	must_create_secret(p, "C", "c", 0);
	env_create(p, "staging");
	coffer_error err;
	/* staging: A draft, A live, B live; main: A live (same as staging), C draft */
	ck_assert_int_eq(set_override(p, "staging", DRAFT, "A", "a-s-draft", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "staging", LIVE, "A", "a-live", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "staging", LIVE, "B", "b-s-live", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "main", LIVE, "A", "a-live", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "main", DRAFT, "C", "c-m-draft", 0, &err), 0);
	ck_assert_int_eq(set_override(p, "main", LIVE, "B", "b-m-live", 0, &err), 0);
	int64_t rev = project_revision(p);
	int64_t src_rev = env_revision(p, "staging"), dst_rev = env_revision(p, "main");

	/* dry run: the same changes, nothing written */
	Coffer__V1__MergeEnvironmentResponse *m = NULL;
	ck_assert_int_eq(merge(p, "staging", "", true, 0, 0, false, &m, &err), 0);
	ck_assert(!m->applied);
	ck_assert_int_eq(m->revision, rev);
	ck_assert_int_eq(m->live_overrides_applied, 2);
	ck_assert_uint_eq(m->n_changes, 3);
	const struct {
		const char *secret;
		int version, kind;
	} want[] = {{"A", DRAFT, 1}, {"B", LIVE, 2}, {"C", DRAFT, 3}};
	for (size_t i = 0; i < 3; i++) {
		ck_assert_str_eq(m->changes[i]->secret, want[i].secret);
		ck_assert_int_eq(m->changes[i]->version, want[i].version);
		ck_assert_int_eq(m->changes[i]->kind, want[i].kind);
	}
	protobuf_c_message_free_unpacked(&m->base, NULL);
	ck_assert_int_eq(project_revision(p), rev);
	struct resolved r;
	resolve_into(p, "main", DRAFT, 0, &r);
	ck_assert_str_eq(resolved_value(&r, "C"), "c-m-draft");
	resolved_clear(&r);

	/* compare-and-set on both sides */
	ck_assert_int_eq(merge(p, "staging", "main", false, src_rev - 1, 0, false, &m, &err), -1);
	ck_assert_int_eq(err.code, 10);
	ck_assert_int_eq(merge(p, "staging", "main", false, 0, dst_rev - 1, false, &m, &err), -1);
	ck_assert_int_eq(err.code, 10);
	ck_assert_int_eq(merge(p, "main", "main", false, 0, 0, false, &m, &err), -1);
	ck_assert_int_eq(err.code, 3);
	ck_assert_int_eq(merge(p, "prod", "main", false, 0, 0, false, &m, &err), -1);
	ck_assert_int_eq(err.code, 5);
	ck_assert_int_eq(merge(p, "staging", "prod", false, 0, 0, false, &m, &err), -1);
	ck_assert_int_eq(err.code, 5);
	ck_assert_int_eq(merge(p, "main", "staging", false, 0, 0, true, &m, &err), -1);
	ck_assert_int_eq(err.code, 9);
	ck_assert_int_eq(project_revision(p), rev);

	/* the merge: one revision, main's overrides become exactly staging's */
	ck_assert_int_eq(merge(p, "staging", "", false, src_rev, dst_rev, false, &m, &err), 0);
	ck_assert(m->applied);
	ck_assert_int_eq(m->revision, rev + 1);
	ck_assert_uint_eq(m->n_changes, 3);
	ck_assert_int_eq(m->live_overrides_applied, 2);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	ck_assert_int_eq(project_revision(p), rev + 1);
	ck_assert_int_eq(env_revision(p, "main"), rev + 1);
	ck_assert_int_eq(env_revision(p, "staging"), src_rev);
	const char *main_draft[] = {"a-s-draft", "b", "c"},
	           *main_live[] = {"a-live", "b-s-live", "c"};
	const char *names[] = {"A", "B", "C"};
	for (int v = 1; v <= 2; v++) {
		resolve_into(p, "main", v, 0, &r);
		for (int k = 0; k < 3; k++)
			ck_assert_str_eq(resolved_value(&r, names[k]),
			                 v == 1 ? main_draft[k] : main_live[k]);
		resolved_clear(&r);
	}
	/* merging again changes nothing and writes nothing */
	ck_assert_int_eq(merge(p, "staging", "main", false, 0, 0, false, &m, &err), 0);
	ck_assert_uint_eq(m->n_changes, 0);
	ck_assert(m->applied);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	ck_assert_int_eq(project_revision(p), rev + 1);

	/* delete_source: merged and gone in the same revision */
	env_create(p, "hotfix");
	ck_assert_int_eq(set_override(p, "hotfix", LIVE, "C", "c-hotfix", 0, &err), 0);
	rev = project_revision(p);
	/* ... but a dry run of it writes nothing and keeps the source. */
	int staging_before = count_overrides(p, "staging", 0, 10);
	ck_assert_int_eq(merge(p, "hotfix", "staging", true, 0, 0, true, &m, &err), 0);
	ck_assert(!m->applied);
	ck_assert_uint_gt(m->n_changes, 0);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	ck_assert_int_eq(project_revision(p), rev);
	ck_assert_int_eq(resolve_code(p, "hotfix", LIVE, 0), 0);
	ck_assert_int_eq(count_overrides(p, "hotfix", 0, 10), 1);
	ck_assert_int_eq(count_overrides(p, "staging", 0, 10), staging_before);
	ck_assert_int_eq(merge(p, "hotfix", "staging", false, 0, 0, true, &m, &err), 0);
	ck_assert_int_eq(m->revision, rev + 1);
	ck_assert_int_eq(m->live_overrides_applied, 1);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	ck_assert_int_eq(resolve_code(p, "hotfix", LIVE, 0), 5);
	ck_assert_int_eq(count_overrides(p, "staging", 0, 10), 1);
	resolve_into(p, "staging", LIVE, 0, &r);
	ck_assert_str_eq(resolved_value(&r, "C"), "c-hotfix");
	ck_assert_str_eq(resolved_value(&r, "A"), "a");
	resolved_clear(&r);
	/* and the state before is still there */
	resolve_into(p, "hotfix", LIVE, rev, &r);
	ck_assert_str_eq(resolved_value(&r, "C"), "c-hotfix");
	resolved_clear(&r);
}
END_TEST

START_TEST(resolve_codes_and_filters)
{
	const char *p = uniq("res");
	create_project(p);
	must_create_secret(p, "ONE", "1", 0);
	must_create_secret(p, "TWO", "2", 0);
	int64_t rev = project_revision(p);
	Coffer__V1__ResolveSecretsRequest q = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	q.project = (char *)p;
	q.environment = "main";
	q.version = DRAFT;
	char *names[] = {"TWO", "NOPE", "TWO", "ALSO_NOPE", "NOPE"};
	q.names = names;
	q.n_names = 5;
	Coffer__V1__ResolveSecretsResponse *r = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_secrets_resolve_secrets(ch, &q, &r, &err), 0);
	ck_assert_int_eq(r->revision, rev);
	ck_assert_uint_eq(r->n_secrets, 1);
	ck_assert_str_eq(r->secrets[0]->name, "TWO");
	ck_assert_uint_eq(r->n_missing, 2);
	ck_assert_str_eq(r->missing[0], "NOPE");
	ck_assert_str_eq(r->missing[1], "ALSO_NOPE");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	q.n_names = 0;
	q.known_revision = rev;
	ck_assert_int_eq(coffer_v1_secrets_resolve_secrets(ch, &q, &r, &err), 0);
	ck_assert(r->not_modified);
	ck_assert_uint_eq(r->n_secrets, 0);
	ck_assert_int_eq(r->revision, rev);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	q.known_revision = rev - 1;
	ck_assert_int_eq(coffer_v1_secrets_resolve_secrets(ch, &q, &r, &err), 0);
	ck_assert(!r->not_modified);
	ck_assert_uint_eq(r->n_secrets, 2);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	q.known_revision = 0;
	q.min_revision = rev;
	ck_assert_int_eq(coffer_v1_secrets_resolve_secrets(ch, &q, &r, &err), 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	q.min_revision = rev + 5;
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    ch, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            14);
	q.min_revision = 0;
	q.at_revision = rev + 1;
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    ch, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            11);
	q.at_revision = -1;
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    ch, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            3);
	q.at_revision = 2; /* only ONE existed */
	ck_assert_int_eq(coffer_v1_secrets_resolve_secrets(ch, &q, &r, &err), 0);
	ck_assert_int_eq(r->revision, 2);
	ck_assert_uint_eq(r->n_secrets, 1);
	ck_assert_str_eq(r->secrets[0]->name, "ONE");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	q.at_revision = 0;
	q.version = 0;
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    ch, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            3);
	q.version = LIVE;
	q.environment = "";
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    ch, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            3);
	q.environment = "prod";
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    ch, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            5);
	q.environment = "main";
	char *bad[] = {"not a name"};
	q.names = bad;
	q.n_names = 1;
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    ch, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            3);
	q.n_names = 0;
	q.project = (char *)uniq("nope");
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    ch, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            5);
}
END_TEST

TCase *tcase_environments(void)
{
	TCase *tc = tcase_create("environments");
	tcase_set_timeout(tc, 120);
	test_add(tc, environments_crud_and_codes);
	test_add(tc, overrides_fall_back_per_environment_and_version);
	test_add(tc, deleting_a_secret_removes_its_overrides);
	test_add(tc, merge_into_main);
	test_add(tc, resolve_codes_and_filters);
	return tc;
}
