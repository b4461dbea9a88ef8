/*
 * test_projects_secrets.c - every Projects and Secrets RPC and status code against the real cofferd
 * over the real PostgreSQL, through the generated C client stubs.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "helpers.h"

/* ---- Projects ---- */

START_TEST(projects_crud_and_codes)
{
	const char *name = uniq("proj");
	Coffer__V1__CreateProjectRequest creq = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	creq.name = (char *)name;
	creq.description = "the support bot";
	Coffer__V1__Project *p = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_projects_create_project(ch, &creq, &p, &err), 0);
	ck_assert_str_eq(p->name, name);
	ck_assert_str_eq(p->description, "the support bot");
	ck_assert_int_eq(p->revision, 1);
	ck_assert_ptr_nonnull(p->create_time);
	ck_assert_int_gt(p->create_time->seconds, 1700000000);
	protobuf_c_message_free_unpacked(&p->base, NULL);

	/* main exists with the project */
	const char *vals[1] = {name};
	PGresult *r =
	        sql("SELECT e.name FROM environments e JOIN projects p ON p.id = e.project_id "
	            "WHERE p.name = $1",
	            1, vals);
	ck_assert_int_eq(PQntuples(r), 1);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "main");
	PQclear(r);

	EXPECT_CODE(
	        coffer_v1_projects_create_project(ch, &creq, (Coffer__V1__Project **)&resp_, &err_),
	        6 /* ALREADY_EXISTS */);
	Coffer__V1__GetProjectRequest greq = COFFER__V1__GET_PROJECT_REQUEST__INIT;
	greq.name = (char *)uniq("missing");
	EXPECT_CODE(
	        coffer_v1_projects_get_project(ch, &greq, (Coffer__V1__Project **)&resp_, &err_),
	        5);

	const char *bad_names[] = {
	        "",
	        "Upper",
	        "1abc",
	        "has_underscore",
	        "has space",
	        "-lead",
	        "a234567890123456789012345678901234567890123456789012345678901234"};
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		Coffer__V1__CreateProjectRequest b = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
		b.name = (char *)bad_names[i];
		EXPECT_CODE(coffer_v1_projects_create_project(
		                    ch, &b, (Coffer__V1__Project **)&resp_, &err_),
		            3);
		greq.name = (char *)bad_names[i];
		EXPECT_CODE(coffer_v1_projects_get_project(ch, &greq,
		                                           (Coffer__V1__Project **)&resp_, &err_),
		            3);
	}
	char long_desc[1100];
	memset(long_desc, 'd', sizeof(long_desc) - 1);
	long_desc[1025] = '\0';
	Coffer__V1__CreateProjectRequest ld = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	ld.name = (char *)uniq("longdesc");
	ld.description = long_desc;
	EXPECT_CODE(
	        coffer_v1_projects_create_project(ch, &ld, (Coffer__V1__Project **)&resp_, &err_),
	        3);
	greq.name = ld.name;
	EXPECT_CODE(
	        coffer_v1_projects_get_project(ch, &greq, (Coffer__V1__Project **)&resp_, &err_),
	        5);

	/* delete: compare-and-set, then gone, then NOT_FOUND */
	Coffer__V1__DeleteProjectRequest dreq = COFFER__V1__DELETE_PROJECT_REQUEST__INIT;
	dreq.name = (char *)name;
	dreq.expected_revision = 7;
	EXPECT_CODE(coffer_v1_projects_delete_project(ch, &dreq, (Google__Protobuf__Empty **)&resp_,
	                                              &err_),
	            10);
	ck_assert_int_eq(project_revision(name), 1);
	dreq.expected_revision = -1;
	EXPECT_CODE(coffer_v1_projects_delete_project(ch, &dreq, (Google__Protobuf__Empty **)&resp_,
	                                              &err_),
	            3);
	dreq.expected_revision = 1;
	Google__Protobuf__Empty *empty = NULL;
	ck_assert_int_eq(coffer_v1_projects_delete_project(ch, &dreq, &empty, &err), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
	greq.name = (char *)name;
	EXPECT_CODE(
	        coffer_v1_projects_get_project(ch, &greq, (Coffer__V1__Project **)&resp_, &err_),
	        5);
	EXPECT_CODE(coffer_v1_projects_delete_project(ch, &dreq, (Google__Protobuf__Empty **)&resp_,
	                                              &err_),
	            5);
	r = sql("SELECT count(*) FROM environments e JOIN projects p ON p.id = e.project_id WHERE "
	        "p.name = $1",
	        1, vals);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
}
END_TEST

/* Pages through every project, returning how many of those with `prefix` were seen, and
 * failing on any duplicate or disorder. */
static int page_all(const char *prefix, int page_size, bool insert_between)
{
	char seen[64][64];
	int n_seen = 0, pages = 0;
	char *token = strdup("");
	char last[128] = "";
	for (;;) {
		Coffer__V1__ListProjectsRequest req = COFFER__V1__LIST_PROJECTS_REQUEST__INIT;
		req.page_size = page_size;
		req.page_token = token;
		Coffer__V1__ListProjectsResponse *resp = NULL;
		coffer_error err;
		ck_assert_msg(coffer_v1_projects_list_projects(ch, &req, &resp, &err) == 0, "%s",
		              err.message);
		ck_assert_int_le((int)resp->n_projects, page_size);
		for (size_t i = 0; i < resp->n_projects; i++) {
			const char *nm = resp->projects[i]->name;
			ck_assert_msg(strcmp(nm, last) > 0, "order: %s after %s", nm, last);
			snprintf(last, sizeof(last), "%s", nm);
			if (strncmp(nm, prefix, strlen(prefix)) == 0) {
				for (int k = 0; k < n_seen; k++)
					ck_assert_msg(strcmp(seen[k], nm) != 0, "duplicate %s", nm);
				ck_assert_int_lt(n_seen, 64);
				snprintf(seen[n_seen++], 64, "%s", nm);
			}
		}
		free(token);
		token = strdup(resp->next_page_token);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (insert_between && pages++ < 3) {
			char extra[96];
			snprintf(extra, sizeof(extra), "%s-zz-%d", prefix, pages);
			create_project(extra);
		}
		if (*token == '\0')
			break;
	}
	free(token);
	return n_seen;
}

START_TEST(projects_pagination)
{
	char prefix[48];
	snprintf(prefix, sizeof(prefix), "pg%d", (int)getpid());
	for (int i = 0; i < 23; i++) {
		char nm[64];
		snprintf(nm, sizeof(nm), "%s-%02d", prefix, i);
		create_project(nm);
	}
	ck_assert_int_eq(page_all(prefix, 7, false), 23);
	ck_assert_int_eq(page_all(prefix, 1000, false), 23);
	/* New names sorted after the cursor appear once; nothing before it is lost or repeated. */
	int n = page_all(prefix, 5, true);
	ck_assert_int_ge(n, 23);
	ck_assert_int_le(n, 26);

	Coffer__V1__ListProjectsRequest req = COFFER__V1__LIST_PROJECTS_REQUEST__INIT;
	req.page_token = "not-a-token";
	EXPECT_CODE(coffer_v1_projects_list_projects(
	                    ch, &req, (Coffer__V1__ListProjectsResponse **)&resp_, &err_),
	            3);
	req.page_token = "";
	req.page_size = 1001;
	EXPECT_CODE(coffer_v1_projects_list_projects(
	                    ch, &req, (Coffer__V1__ListProjectsResponse **)&resp_, &err_),
	            3);
	req.page_size = -1;
	EXPECT_CODE(coffer_v1_projects_list_projects(
	                    ch, &req, (Coffer__V1__ListProjectsResponse **)&resp_, &err_),
	            3);
}
END_TEST

/* ---- Secrets ---- */

START_TEST(secrets_crud_and_codes)
{
	const char *p = uniq("sec");
	create_project(p);
	Coffer__V1__CreateSecretRequest creq = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	creq.project = (char *)p;
	creq.name = "API_KEY";
	creq.value = "value-one";
	creq.description = "for the API";
	Coffer__V1__Secret *s = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_secrets_create_secret(ch, &creq, &s, &err), 0);
	ck_assert_str_eq(s->project, p);
	ck_assert_str_eq(s->name, "API_KEY");
	ck_assert_int_eq(s->visibility, COFFER__V1__VISIBILITY__VISIBILITY_MASKED);
	ck_assert_str_eq(s->description, "for the API");
	ck_assert_int_eq(s->revision, 2);
	ck_assert_ptr_nonnull(s->create_time);
	ck_assert_ptr_nonnull(s->update_time);
	protobuf_c_message_free_unpacked(&s->base, NULL);
	ck_assert_int_eq(project_revision(p), 2);

	EXPECT_CODE(
	        coffer_v1_secrets_create_secret(ch, &creq, (Coffer__V1__Secret **)&resp_, &err_),
	        6);
	char *v = must_reveal(p, "API_KEY");
	ck_assert_str_eq(v, "value-one");
	free(v);

	/* invalid input changes nothing */
	Coffer__V1__CreateSecretRequest bad = creq;
	bad.name = "BAD-NAME";
	EXPECT_CODE(coffer_v1_secrets_create_secret(ch, &bad, (Coffer__V1__Secret **)&resp_, &err_),
	            3);
	bad.name = "OK_NAME";
	bad.visibility = 9;
	EXPECT_CODE(coffer_v1_secrets_create_secret(ch, &bad, (Coffer__V1__Secret **)&resp_, &err_),
	            3);
	bad.visibility = 0;
	char *big = malloc(65538);
	memset(big, 'v', 65537);
	big[65537] = '\0';
	bad.value = big;
	EXPECT_CODE(coffer_v1_secrets_create_secret(ch, &bad, (Coffer__V1__Secret **)&resp_, &err_),
	            3);
	big[65536] = '\0';
	bad.name = "MAX_VALUE";
	ck_assert_int_eq(create_secret(p, "MAX_VALUE", big, 0, &err), 0);
	v = must_reveal(p, "MAX_VALUE");
	ck_assert_uint_eq(strlen(v), 65536);
	free(v);
	free(big);
	ck_assert_int_eq(create_secret(p, "EMPTY", "", 0, &err), 0);
	v = must_reveal(p, "EMPTY");
	ck_assert_str_eq(v, "");
	free(v);
	ck_assert_int_eq(project_revision(p), 4);

	/* NOT_FOUND for a missing project and a missing secret, on every RPC */
	const char *nop = uniq("nope");
	bad = creq;
	bad.project = (char *)nop;
	EXPECT_CODE(coffer_v1_secrets_create_secret(ch, &bad, (Coffer__V1__Secret **)&resp_, &err_),
	            5);
	Coffer__V1__GetSecretRequest g = COFFER__V1__GET_SECRET_REQUEST__INIT;
	g.project = (char *)nop;
	g.name = "API_KEY";
	EXPECT_CODE(coffer_v1_secrets_get_secret(ch, &g, (Coffer__V1__Secret **)&resp_, &err_), 5);
	g.project = (char *)p;
	g.name = "MISSING";
	EXPECT_CODE(coffer_v1_secrets_get_secret(ch, &g, (Coffer__V1__Secret **)&resp_, &err_), 5);
	g.name = "bad name";
	EXPECT_CODE(coffer_v1_secrets_get_secret(ch, &g, (Coffer__V1__Secret **)&resp_, &err_), 3);
	Coffer__V1__ListSecretsRequest l = COFFER__V1__LIST_SECRETS_REQUEST__INIT;
	l.project = (char *)nop;
	EXPECT_CODE(coffer_v1_secrets_list_secrets(
	                    ch, &l, (Coffer__V1__ListSecretsResponse **)&resp_, &err_),
	            5);
	Coffer__V1__UpdateSecretRequest u = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	u.project = (char *)p;
	u.name = "MISSING";
	EXPECT_CODE(coffer_v1_secrets_update_secret(ch, &u, (Coffer__V1__Secret **)&resp_, &err_),
	            5);
	u.project = (char *)nop;
	EXPECT_CODE(coffer_v1_secrets_update_secret(ch, &u, (Coffer__V1__Secret **)&resp_, &err_),
	            5);
	Coffer__V1__DeleteSecretRequest d = COFFER__V1__DELETE_SECRET_REQUEST__INIT;
	d.project = (char *)p;
	d.name = "MISSING";
	EXPECT_CODE(
	        coffer_v1_secrets_delete_secret(ch, &d, (Google__Protobuf__Empty **)&resp_, &err_),
	        5);
	ck_assert_int_eq(reveal(ch, p, "MISSING", NULL, &err), 5);
	ck_assert_int_eq(reveal(ch, nop, "API_KEY", NULL, &err), 5);
	ck_assert_int_eq(project_revision(p), 4);

	/* list */
	l.project = (char *)p;
	Coffer__V1__ListSecretsResponse *lr = NULL;
	ck_assert_int_eq(coffer_v1_secrets_list_secrets(ch, &l, &lr, &err), 0);
	ck_assert_uint_eq(lr->n_secrets, 3);
	ck_assert_str_eq(lr->secrets[0]->name, "API_KEY");
	ck_assert_str_eq(lr->secrets[1]->name, "EMPTY");
	ck_assert_str_eq(lr->secrets[2]->name, "MAX_VALUE");
	ck_assert_str_eq(lr->next_page_token, "");
	protobuf_c_message_free_unpacked(&lr->base, NULL);
	l.page_size = 2;
	ck_assert_int_eq(coffer_v1_secrets_list_secrets(ch, &l, &lr, &err), 0);
	ck_assert_uint_eq(lr->n_secrets, 2);
	l.page_token = strdup(lr->next_page_token);
	protobuf_c_message_free_unpacked(&lr->base, NULL);
	ck_assert_int_eq(coffer_v1_secrets_list_secrets(ch, &l, &lr, &err), 0);
	ck_assert_uint_eq(lr->n_secrets, 1);
	ck_assert_str_eq(lr->secrets[0]->name, "MAX_VALUE");
	ck_assert_str_eq(lr->next_page_token, "");
	protobuf_c_message_free_unpacked(&lr->base, NULL);
	free(l.page_token);
	l.page_token = "garbage";
	EXPECT_CODE(coffer_v1_secrets_list_secrets(
	                    ch, &l, (Coffer__V1__ListSecretsResponse **)&resp_, &err_),
	            3);

	/* update: value only, description only, compare-and-set */
	u.project = (char *)p;
	u.name = "API_KEY";
	u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	u.value = "value-two";
	u.expected_revision = 2;
	ck_assert_int_eq(coffer_v1_secrets_update_secret(ch, &u, &s, &err), 0);
	ck_assert_int_eq(s->revision, 5);
	ck_assert_str_eq(s->description, "for the API");
	protobuf_c_message_free_unpacked(&s->base, NULL);
	v = must_reveal(p, "API_KEY");
	ck_assert_str_eq(v, "value-two");
	free(v);
	u.value = "value-three";
	EXPECT_CODE(coffer_v1_secrets_update_secret(ch, &u, (Coffer__V1__Secret **)&resp_, &err_),
	            10);
	v = must_reveal(p, "API_KEY");
	ck_assert_str_eq(v, "value-two");
	free(v);
	u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE__NOT_SET;
	u.description_update_case =
	        COFFER__V1__UPDATE_SECRET_REQUEST__DESCRIPTION_UPDATE_DESCRIPTION;
	u.description = "";
	u.expected_revision = 5;
	ck_assert_int_eq(coffer_v1_secrets_update_secret(ch, &u, &s, &err), 0);
	ck_assert_str_eq(s->description, "");
	ck_assert_int_eq(s->revision, 6);
	protobuf_c_message_free_unpacked(&s->base, NULL);
	v = must_reveal(p, "API_KEY");
	ck_assert_str_eq(v, "value-two");
	free(v);
	u.description_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__DESCRIPTION_UPDATE__NOT_SET;
	u.expected_revision = 0;
	u.visibility = 7;
	EXPECT_CODE(coffer_v1_secrets_update_secret(ch, &u, (Coffer__V1__Secret **)&resp_, &err_),
	            3);
	u.visibility = 0;
	u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	u.value = "\xc3\x28";
	EXPECT_CODE(coffer_v1_secrets_update_secret(ch, &u, (Coffer__V1__Secret **)&resp_, &err_),
	            3);
	ck_assert_int_eq(project_revision(p), 6);

	/* delete with CAS; recreate brings a fresh secret */
	d.name = "API_KEY";
	d.expected_revision = 5;
	EXPECT_CODE(
	        coffer_v1_secrets_delete_secret(ch, &d, (Google__Protobuf__Empty **)&resp_, &err_),
	        10);
	d.expected_revision = 6;
	Google__Protobuf__Empty *empty = NULL;
	ck_assert_int_eq(coffer_v1_secrets_delete_secret(ch, &d, &empty, &err), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
	g.name = "API_KEY";
	EXPECT_CODE(coffer_v1_secrets_get_secret(ch, &g, (Coffer__V1__Secret **)&resp_, &err_), 5);
	ck_assert_int_eq(reveal(ch, p, "API_KEY", NULL, &err), 5);
	ck_assert_int_eq(project_revision(p), 7);
	must_create_secret(p, "API_KEY", "reborn", 0);
	v = must_reveal(p, "API_KEY");
	ck_assert_str_eq(v, "reborn");
	free(v);
	s = get_secret(p, "API_KEY");
	ck_assert_int_eq(s->revision, 8);
	protobuf_c_message_free_unpacked(&s->base, NULL);
}
END_TEST

START_TEST(visibility_rules)
{
	const char *p = uniq("vis");
	create_project(p);
	must_create_secret(p, "MASKED", "m-value", COFFER__V1__VISIBILITY__VISIBILITY_MASKED);
	must_create_secret(p, "RESTRICTED", "r-value",
	                   COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
	coffer_error err;
	char *v = NULL;
	ck_assert_int_eq(reveal(ch, p, "RESTRICTED", &v, &err), 9 /* FAILED_PRECONDITION */);
	ck_assert_ptr_null(strstr(err.message, "r-value"));
	ck_assert_ptr_nonnull(strstr(err.message, "RESTRICTED"));

	Coffer__V1__UpdateSecretRequest u = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	u.project = (char *)p;
	u.name = "RESTRICTED";
	u.visibility = COFFER__V1__VISIBILITY__VISIBILITY_MASKED;
	EXPECT_CODE(coffer_v1_secrets_update_secret(ch, &u, (Coffer__V1__Secret **)&resp_, &err_),
	            9);
	Coffer__V1__Secret *s = get_secret(p, "RESTRICTED");
	ck_assert_int_eq(s->visibility, COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
	protobuf_c_message_free_unpacked(&s->base, NULL);

	/* masked -> restricted is allowed, and then reveal is refused */
	u.name = "MASKED";
	u.visibility = COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED;
	ck_assert_int_eq(coffer_v1_secrets_update_secret(ch, &u, &s, &err), 0);
	ck_assert_int_eq(s->visibility, COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
	protobuf_c_message_free_unpacked(&s->base, NULL);
	ck_assert_int_eq(reveal(ch, p, "MASKED", &v, &err), 9);
	/* a restricted secret's value can still be replaced */
	u.visibility = 0;
	u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	u.value = "new";
	ck_assert_int_eq(coffer_v1_secrets_update_secret(ch, &u, &s, &err), 0);
	ck_assert_int_eq(s->visibility, COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
	protobuf_c_message_free_unpacked(&s->base, NULL);
}
END_TEST

START_TEST(reveal_in_environment)
{
	const char *p = uniq("rev");
	create_project(p);
	must_create_secret(p, "TOKEN", "default-value", 0);
	Coffer__V1__RevealSecretRequest req = COFFER__V1__REVEAL_SECRET_REQUEST__INIT;
	req.project = (char *)p;
	req.name = "TOKEN";
	req.environment = "main";
	EXPECT_CODE(coffer_v1_secrets_reveal_secret(
	                    ch, &req, (Coffer__V1__RevealSecretResponse **)&resp_, &err_),
	            3);
	req.version = COFFER__V1__VERSION__VERSION_LIVE;
	Coffer__V1__RevealSecretResponse *r = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_secrets_reveal_secret(ch, &req, &r, &err), 0);
	ck_assert_str_eq(r->value, "default-value");
	ck_assert_int_eq(r->source, COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_DEFAULT);
	ck_assert_int_eq(r->revision, 2);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	req.environment = "staging";
	EXPECT_CODE(coffer_v1_secrets_reveal_secret(
	                    ch, &req, (Coffer__V1__RevealSecretResponse **)&resp_, &err_),
	            5);
	req.environment = "Bad Env";
	EXPECT_CODE(coffer_v1_secrets_reveal_secret(
	                    ch, &req, (Coffer__V1__RevealSecretResponse **)&resp_, &err_),
	            3);
}
END_TEST

START_TEST(revisions_are_gapless)
{
	const char *p = uniq("gap");
	create_project(p);
	int64_t rev = 1;
	coffer_error err;
	for (int i = 0; i < 20; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "S%d", i % 5);
		int rc;
		if (i < 5) {
			rc = create_secret(p, nm, "v", 0, &err);
		} else if (i % 3 == 0) {
			Coffer__V1__DeleteSecretRequest d = COFFER__V1__DELETE_SECRET_REQUEST__INIT;
			d.project = (char *)p;
			d.name = nm;
			Google__Protobuf__Empty *e = NULL;
			rc = coffer_v1_secrets_delete_secret(ch, &d, &e, &err);
			if (e)
				protobuf_c_message_free_unpacked(&e->base, NULL);
		} else {
			rc = create_secret(p, nm, "again", 0, &err);
			if (rc != 0) {
				Coffer__V1__UpdateSecretRequest u =
				        COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
				u.project = (char *)p;
				u.name = nm;
				u.expected_revision =
				        (i % 2) ? 999 : 0; /* every other one fails the CAS */
				u.value_update_case =
				        COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
				u.value = "updated";
				Coffer__V1__Secret *s = NULL;
				rc = coffer_v1_secrets_update_secret(ch, &u, &s, &err);
				if (s) {
					ck_assert_int_eq(s->revision, rev + 1);
					protobuf_c_message_free_unpacked(&s->base, NULL);
				}
			}
		}
		if (rc == 0)
			rev++;
		ck_assert_int_eq(project_revision(p), rev);
	}
	ck_assert_int_gt(rev, 15);
}
END_TEST

/* ---- concurrency ---- */

#define CAS_THREADS    8
#define CAS_INCREMENTS 15

struct cas_arg {
	const char *project; /* shared project */
	int aborted;         /* ABORTED answers seen */
	int other;           /* unexpected failures */
};

static void *cas_worker(void *arg)
{
	struct cas_arg *a = arg;
	coffer_channel *c = channel(0);
	for (int done = 0; done < CAS_INCREMENTS;) {
		Coffer__V1__GetSecretRequest g = COFFER__V1__GET_SECRET_REQUEST__INIT;
		g.project = (char *)a->project;
		g.name = "COUNTER";
		Coffer__V1__Secret *s = NULL;
		coffer_error err;
		if (coffer_v1_secrets_get_secret(c, &g, &s, &err) != 0) {
			a->other++;
			break;
		}
		int64_t rev = s->revision;
		protobuf_c_message_free_unpacked(&s->base, NULL);
		char *v = NULL;
		if (reveal(c, a->project, "COUNTER", &v, &err) != 0) {
			a->other++;
			break;
		}
		/* The value may be newer than rev: then the CAS below must fail. */
		char next[32];
		snprintf(next, sizeof(next), "%ld", atol(v) + 1);
		free(v);
		Coffer__V1__UpdateSecretRequest u = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
		u.project = (char *)a->project;
		u.name = "COUNTER";
		u.expected_revision = rev;
		u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
		u.value = next;
		int rc = coffer_v1_secrets_update_secret(c, &u, &s, &err);
		if (rc == 0) {
			protobuf_c_message_free_unpacked(&s->base, NULL);
			done++;
		} else if (err.code == 10) {
			a->aborted++;
		} else {
			a->other++;
			break;
		}
	}
	coffer_channel_free(c);
	return NULL;
}

START_TEST(concurrent_compare_and_set)
{
	const char *p = uniq("cas");
	create_project(p);
	must_create_secret(p, "COUNTER", "0", 0);
	pthread_t t[CAS_THREADS];
	struct cas_arg args[CAS_THREADS];
	for (int i = 0; i < CAS_THREADS; i++) {
		args[i] = (struct cas_arg){.project = p};
		pthread_create(&t[i], NULL, cas_worker, &args[i]);
	}
	int aborted = 0;
	for (int i = 0; i < CAS_THREADS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(args[i].other, 0);
		aborted += args[i].aborted;
	}
	char *v = must_reveal(p, "COUNTER");
	ck_assert_int_eq(atoi(v), CAS_THREADS * CAS_INCREMENTS);
	free(v);
	ck_assert_int_eq(project_revision(p), 2 + CAS_THREADS * CAS_INCREMENTS);
	printf("concurrent CAS: %d increments, %d ABORTED retries\n", CAS_THREADS * CAS_INCREMENTS,
	       aborted);
}
END_TEST

/* A deleted project takes every value row it had with it (defaults, overrides, their history),
 * and nothing of another project's. */
static long long value_rows(const char *project)
{
	const char *vals[1] = {project};
	PGresult *r =
	        sql("SELECT count(*) FROM secret_values v JOIN secrets s ON s.id = v.secret_id "
	            "JOIN projects p ON p.id = s.project_id WHERE p.name = $1",
	            1, vals);
	long long n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

START_TEST(a_deleted_project_takes_its_value_rows)
{
	const char *p = uniq("gone"), *q = uniq("stays");
	create_project(p);
	create_project(q);
	must_create_secret(p, "A", "a1", 0);
	must_create_secret(p, "B", "b1", 0);
	must_create_secret(q, "A", "qa", 0);
	update_value(p, "A", "a2");
	env_create(p, "staging");
	coffer_error err = {0};
	ck_assert_int_eq(
	        set_override(p, "staging", COFFER__V1__VERSION__VERSION_LIVE, "B", "ob", 0, &err),
	        0);
	ck_assert_int_eq(value_rows(p), 4);
	PGresult *r = sql("SELECT array_agg(s.id) FROM secrets s JOIN projects p ON p.id = "
	                  "s.project_id WHERE p.name = $1",
	                  1, (const char *const[]){p});
	char ids[256];
	snprintf(ids, sizeof(ids), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	Coffer__V1__DeleteProjectRequest d = COFFER__V1__DELETE_PROJECT_REQUEST__INIT;
	d.name = (char *)p;
	Google__Protobuf__Empty *empty = NULL;
	ck_assert_int_eq(coffer_v1_projects_delete_project(ch, &d, &empty, &err), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
	r = sql("SELECT count(*) FROM secret_values WHERE secret_id = ANY ($1::int8[])", 1,
	        (const char *const[]){ids});
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	ck_assert_int_eq(value_rows(q), 1);
}
END_TEST

TCase *tcase_projects_secrets(void)
{
	TCase *tc = tcase_create("projects_secrets");
	tcase_set_timeout(tc, 120);
	test_add(tc, projects_crud_and_codes);
	test_add(tc, projects_pagination);
	test_add(tc, secrets_crud_and_codes);
	test_add(tc, visibility_rules);
	test_add(tc, a_deleted_project_takes_its_value_rows);
	test_add(tc, reveal_in_environment);
	test_add(tc, revisions_are_gapless);
	test_add(tc, concurrent_compare_and_set);
	return tc;
}
