/*
 * test_access.c - a second cofferd in this process, with authentication on: the bootstrap admin
 * token; a permission matrix over every RPC of the registry x every role x a token scoped to this
 * or another project, environment and version (and it fails when an RPC is missing from it);
 * restricted values in no response to a non-runtime token; revoked and expired tokens; audit rows
 * for every kind of call with no value in any; audit made unwritable -> resolves and writes
 * refused. And TLS / mTLS servers called from the C client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_run.h"
#include "api.h"
#include "model.h"
#include "coffer_registry.h"
#include "coffer/v1/secrets.stub.h"
#include "helpers.h"

static struct server *auth_srv;
static char auth_target[64];
static char admin_token[128];
static char project[64], other[64];
static char canary[64];

static coffer_channel *chan_as(const char *token)
{
	coffer_channel_options o = {.target = auth_target, .token = token, .timeout_ms = 20000};
	coffer_channel *c = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_channel_new(&o, &c, &err), 0);
	return c;
}

/* Creates a token with the admin token; returns its secret (static storage per call site). */
static void make_token(const char *name, int role, const char *proj, const char *env, int version,
                       int64_t ttl, char *secret, char *id)
{
	coffer_channel *a = chan_as(admin_token);
	Coffer__V1__CreateTokenRequest req = COFFER__V1__CREATE_TOKEN_REQUEST__INIT;
	req.name = (char *)name;
	req.role = role;
	req.project = (char *)(proj ? proj : "");
	char *envs[1] = {(char *)env};
	Coffer__V1__Version vers[1] = {version};
	if (env) {
		req.environments = envs;
		req.n_environments = 1;
	}
	if (version) {
		req.versions = vers;
		req.n_versions = 1;
	}
	req.ttl_seconds = ttl;
	Coffer__V1__CreateTokenResponse *r = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_access_create_token(a, &req, &r, &err) == 0, "%s", err.message);
	ck_assert_int_eq(strncmp(r->secret, "coffer_", 7), 0);
	ck_assert_uint_eq(strlen(r->secret), 56);
	snprintf(secret, 128, "%s", r->secret);
	if (id)
		snprintf(id, 32, "%s", r->token->id);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	coffer_channel_free(a);
}

static void seed(void)
{
	coffer_channel *a = chan_as(admin_token);
	snprintf(project, sizeof(project), "%s", uniq("acl"));
	snprintf(other, sizeof(other), "%s", uniq("acl-other"));
	snprintf(canary, sizeof(canary), "restricted-canary-%d", (int)getpid());
	const char *projects[2] = {project, other};
	for (int i = 0; i < 2; i++) {
		Coffer__V1__CreateProjectRequest c = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
		c.name = (char *)projects[i];
		Coffer__V1__Project *p = NULL;
		coffer_error err;
		ck_assert_msg(coffer_v1_projects_create_project(a, &c, &p, &err) == 0, "%s",
		              err.message);
		protobuf_c_message_free_unpacked(&p->base, NULL);
		const char *names[2] = {"API_KEY", "RSECRET"};
		for (int k = 0; k < 2; k++) {
			Coffer__V1__CreateSecretRequest s = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
			s.project = (char *)projects[i];
			s.name = (char *)names[k];
			s.value = k ? canary : "masked-value";
			s.visibility = k ? COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED : 0;
			Coffer__V1__Secret *x = NULL;
			ck_assert_msg(coffer_v1_secrets_create_secret(a, &s, &x, &err) == 0, "%s",
			              err.message);
			protobuf_c_message_free_unpacked(&x->base, NULL);
		}
		Coffer__V1__CreateEnvironmentRequest e =
		        COFFER__V1__CREATE_ENVIRONMENT_REQUEST__INIT;
		e.project = (char *)projects[i];
		e.name = "staging";
		Coffer__V1__Environment *env = NULL;
		ck_assert_int_eq(coffer_v1_environments_create_environment(a, &e, &env, &err), 0);
		protobuf_c_message_free_unpacked(&env->base, NULL);
	}
	coffer_channel_free(a);
}

static void start_auth_server(void)
{
	if (auth_srv)
		return;
	char path[] = "/tmp/coffer-bootstrap-XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	unlink(path); /* cofferd makes it */
	/* The bootstrap token is made only when no token exists (this database is the tests'). */
	PQclear(sql("DELETE FROM tokens", 0, NULL));
	struct settings c2 = cfg;
	c2.insecure_no_auth = false;
	c2.bootstrap_token_file = path;
	c2.listen = "127.0.0.1:0";
	struct cof_err e = {0};
	ck_assert_msg(server_start(&c2, 5, &auth_srv, &e) == 0, "%s %s", e.msg, e.detail);
	snprintf(auth_target, sizeof(auth_target), "127.0.0.1:%d", server_port(auth_srv));
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(admin_token, sizeof(admin_token), f));
	fclose(f);
	admin_token[strcspn(admin_token, "\n")] = '\0';
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	unlink(path);
	seed();
}

/* ---- the matrix ---- */

/* Who may call each RPC: A admin only, R read (admin, editor, viewer of the project),
 * W write (admin, editor of the project), X resolve (runtime of the project, env, version),
 * P public. One line per RPC: a new RPC without a line fails the test. */
static const struct {
	const char *path;
	char perm;
} matrix[] = {
        {"/coffer.v1.Projects/CreateProject", 'A'},
        {"/coffer.v1.Projects/GetProject", 'R'},
        {"/coffer.v1.Projects/ListProjects", 'A'},
        {"/coffer.v1.Projects/DeleteProject", 'A'},
        {"/coffer.v1.Secrets/CreateSecret", 'W'},
        {"/coffer.v1.Secrets/GetSecret", 'R'},
        {"/coffer.v1.Secrets/ListSecrets", 'R'},
        {"/coffer.v1.Secrets/UpdateSecret", 'W'},
        {"/coffer.v1.Secrets/DeleteSecret", 'W'},
        {"/coffer.v1.Secrets/RevealSecret", 'W'},
        {"/coffer.v1.Secrets/ResolveSecrets", 'X'},
        {"/coffer.v1.Secrets/WatchSecrets", 'V'},
        {"/coffer.v1.Secrets/ApplyChanges", 'W'},
        {"/coffer.v1.Environments/CreateEnvironment", 'W'},
        {"/coffer.v1.Environments/GetEnvironment", 'R'},
        {"/coffer.v1.Environments/ListEnvironments", 'R'},
        {"/coffer.v1.Environments/DeleteEnvironment", 'W'},
        {"/coffer.v1.Environments/SetOverride", 'W'},
        {"/coffer.v1.Environments/DeleteOverride", 'W'},
        {"/coffer.v1.Environments/ListOverrides", 'R'},
        {"/coffer.v1.Environments/MergeEnvironment", 'W'},
        {"/coffer.v1.Access/CreateToken", 'A'},
        {"/coffer.v1.Access/ListTokens", 'A'},
        {"/coffer.v1.Access/RevokeToken", 'A'},
        {"/coffer.v1.Access/ListAuditEvents", 'A'},
        {"/coffer.v1.Access/WhoAmI", 'T'},
        /* console sessions: any valid token is let in; over gRPC they then answer
         * FAILED_PRECONDITION (a session is a cookie: tests/connect/ covers them) */
        {"/coffer.console.v1.Sessions/SignIn", 'T'},
        {"/coffer.console.v1.Sessions/SignOut", 'T'},
        {"/coffer.console.v1.Sessions/GetSession", 'T'},
        {"/grpc.health.v1.Health/Check", 'P'},
        {"/grpc.health.v1.Health/Watch", 'P'},
        {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", 'P'},
};

struct who {
	const char *label; /* for messages */
	int role;          /* 0: no token or a bad one */
	bool own;          /* scoped to the project the requests name */
	bool env_ok;       /* runtime scope covers staging/draft */
	char secret[128];  /* bearer */
};

static char perm_of(const char *path)
{
	for (size_t i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++)
		if (strcmp(matrix[i].path, path) == 0)
			return matrix[i].perm;
	return 0;
}

static bool allowed(const struct who *w, char perm)
{
	switch (perm) {
	case 'P':
		return true;
	case 'A':
		return w->role == ROLE_ADMIN;
	case 'R':
		return w->role == ROLE_ADMIN ||
		       (w->own && (w->role == ROLE_EDITOR || w->role == ROLE_VIEWER));
	case 'W':
		return w->role == ROLE_ADMIN || (w->own && w->role == ROLE_EDITOR);
	case 'X':
		return w->role == ROLE_RUNTIME && w->own && w->env_ok;
	case 'V': /* watch: no value is sent, so viewers may */
		return w->role == ROLE_ADMIN ||
		       (w->own && (w->role == ROLE_EDITOR || w->role == ROLE_VIEWER)) ||
		       (w->role == ROLE_RUNTIME && w->own && w->env_ok);
	case 'T':
		return w->role != 0;
	}
	return false;
}

static void set_str(ProtobufCMessage *m, const char *field, const char *value)
{
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, field);
	if (f && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED)
		*(const char **)((char *)m + f->offset) = value;
}

static void set_num(ProtobufCMessage *m, const char *field, int64_t value)
{
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, field);
	if (f == NULL || f->label == PROTOBUF_C_LABEL_REPEATED)
		return;
	if (f->type == PROTOBUF_C_TYPE_INT64)
		*(int64_t *)((char *)m + f->offset) = value;
	else if (f->type == PROTOBUF_C_TYPE_ENUM || f->type == PROTOBUF_C_TYPE_INT32)
		*(int *)((char *)m + f->offset) = (int)value;
	else if (f->type == PROTOBUF_C_TYPE_BOOL)
		*(protobuf_c_boolean *)((char *)m + f->offset) = value != 0;
}

/* A request that names the test project (and changes nothing: every write's expected revision
 * is far ahead, so an allowed write answers ABORTED). */
static ProtobufCMessage *request_for(const coffer_method_desc *m)
{
	ProtobufCMessage *req = calloc(1, m->input->sizeof_message);
	protobuf_c_message_init(m->input, req);
	bool projects = strstr(m->path, "/coffer.v1.Projects/") != NULL;
	bool secrets = strstr(m->path, "/coffer.v1.Secrets/") != NULL;
	bool access = strstr(m->path, "/coffer.v1.Access/") != NULL;
	set_str(req, "project", project);
	set_str(req, "name",
	        projects  ? project
	        : secrets ? "API_KEY"
	        : access  ? "matrix"
	                  : "staging");
	set_str(req, "environment", "staging");
	set_str(req, "secret", "API_KEY");
	set_str(req, "source", "staging");
	set_str(req, "target", "main");
	set_str(req, "value", "matrix-value");
	set_str(req, "id", "tok_0000000000000000");
	set_num(req, "version", COFFER__V1__VERSION__VERSION_DRAFT);
	set_num(req, "expected_revision", 999999999);
	set_num(req, "expected_source_revision", 999999999);
	if (strstr(m->path, "/CreateProject"))
		set_str(req, "name", project);  /* exists: ALREADY_EXISTS when allowed */
	if (strstr(m->path, "/ApplyChanges")) { /* one change, so that an allowed set is ABORTED */
		static Coffer__V1__DeleteSecretChange del = COFFER__V1__DELETE_SECRET_CHANGE__INIT;
		static Coffer__V1__Change change = COFFER__V1__CHANGE__INIT;
		static Coffer__V1__Change *changes[1] = {&change};
		del.name = "API_KEY";
		change.change_case = COFFER__V1__CHANGE__CHANGE_DELETE_SECRET;
		change.delete_secret = &del;
		((Coffer__V1__ApplyChangesRequest *)req)->changes = changes;
		((Coffer__V1__ApplyChangesRequest *)req)->n_changes = 1;
	}
	return req;
}

/* What opening a watch of staging/draft in the project gets (OK: it is let through). */
static void watch_code(coffer_channel *c, coffer_error *err)
{
	coffer_watch *w = NULL;
	memset(err, 0, sizeof(*err));
	if (coffer_watch_open(c, project, "staging", COFFER_VERSION_DRAFT, NULL, 0, 0, &w, err) !=
	    0)
		return;
	coffer_change chg;
	if (coffer_watch_next(w, 1500, &chg, err) >= 0)
		memset(err, 0, sizeof(*err));
	coffer_watch_close(w);
}

START_TEST(permission_matrix)
{
	start_auth_server();
	/* Every RPC the server serves has a line in the matrix and a policy in the server. */
	for (size_t f = 0; f < coffer__n_files; f++)
		for (size_t s = 0; s < coffer__files[f]->n_services; s++) {
			const coffer_service_desc *svc = coffer__files[f]->services[s];
			for (size_t k = 0; k < svc->n_methods; k++) {
				ck_assert_msg(perm_of(svc->methods[k].path) != 0,
				              "%s is missing from the permission matrix",
				              svc->methods[k].path);
				ck_assert_msg(api_has_policy(svc->methods[k].path),
				              "%s has no policy in server/api/policy.c",
				              svc->methods[k].path);
			}
		}

	struct who who[] = {
	        {"admin", ROLE_ADMIN, true, true, ""},
	        {"editor", ROLE_EDITOR, true, true, ""},
	        {"viewer", ROLE_VIEWER, true, true, ""},
	        {"runtime", ROLE_RUNTIME, true, true, ""},
	        {"runtime staging/draft", ROLE_RUNTIME, true, true, ""},
	        {"runtime main only", ROLE_RUNTIME, true, false, ""},
	        {"runtime live only", ROLE_RUNTIME, true, false, ""},
	        {"editor of another project", ROLE_EDITOR, false, true, ""},
	        {"viewer of another project", ROLE_VIEWER, false, true, ""},
	        {"runtime of another project", ROLE_RUNTIME, false, true, ""},
	        {"no token", 0, false, false, ""},
	        {"unknown token", 0, false, false, ""},
	};
	snprintf(who[0].secret, 128, "%s", admin_token);
	make_token("m-editor", ROLE_EDITOR, project, NULL, 0, 0, who[1].secret, NULL);
	make_token("m-viewer", ROLE_VIEWER, project, NULL, 0, 0, who[2].secret, NULL);
	make_token("m-runtime", ROLE_RUNTIME, project, NULL, 0, 0, who[3].secret, NULL);
	make_token("m-rt-scoped", ROLE_RUNTIME, project, "staging", 1, 0, who[4].secret, NULL);
	make_token("m-rt-main", ROLE_RUNTIME, project, "main", 0, 0, who[5].secret, NULL);
	make_token("m-rt-live", ROLE_RUNTIME, project, NULL, 2, 0, who[6].secret, NULL);
	make_token("o-editor", ROLE_EDITOR, other, NULL, 0, 0, who[7].secret, NULL);
	make_token("o-viewer", ROLE_VIEWER, other, NULL, 0, 0, who[8].secret, NULL);
	make_token("o-runtime", ROLE_RUNTIME, other, NULL, 0, 0, who[9].secret, NULL);
	snprintf(who[11].secret, 128, "coffer_%s",
	         "0000000000000000000000000000000000000000000AAAAAA");

	int checked = 0, allowed_calls = 0;
	for (size_t w = 0; w < sizeof(who) / sizeof(who[0]); w++) {
		coffer_channel *c = chan_as(*who[w].secret ? who[w].secret : NULL);
		for (size_t f = 0; f < coffer__n_files; f++) {
			for (size_t s = 0; s < coffer__files[f]->n_services; s++) {
				const coffer_service_desc *svc = coffer__files[f]->services[s];
				for (size_t k = 0; k < svc->n_methods; k++) {
					const coffer_method_desc *m = &svc->methods[k];
					bool watch = strstr(m->path, "/WatchSecrets") != NULL;
					if ((m->client_streaming || m->server_streaming) && !watch)
						continue; /* public streams: health Watch,
						             reflection */
					char perm = perm_of(m->path);
					ProtobufCMessage *req = request_for(m);
					ProtobufCMessage *resp = NULL;
					coffer_error err = {0};
					if (watch)
						watch_code(c, &err);
					else
						coffer__call_unary(c, m, req, &resp, &err);
					free(req);
					bool ok = allowed(&who[w], perm);
					if (ok) {
						allowed_calls++;
						ck_assert_msg(err.code != 7 && err.code != 16,
						              "%s as %s: got %s (%s), expected to "
						              "be let through",
						              m->path, who[w].label,
						              coffer_code_name(err.code),
						              err.message);
					} else {
						int want = who[w].role == 0 && perm != 'P' ? 16 : 7;
						ck_assert_msg(err.code == want,
						              "%s as %s: got %s (%s), want %s",
						              m->path, who[w].label,
						              coffer_code_name(err.code),
						              err.message, coffer_code_name(want));
					}
					if (resp) {
						/* a restricted value reaches runtime tokens only,
						 * via ResolveSecrets */
						size_t len =
						        protobuf_c_message_get_packed_size(resp);
						uint8_t *buf = malloc(len + 1);
						protobuf_c_message_pack(resp, buf);
						bool has = memmem(buf, len, canary,
						                  strlen(canary)) != NULL;
						free(buf);
						ck_assert_msg(
						        !has || (who[w].role == ROLE_RUNTIME &&
						                 perm == 'X'),
						        "%s as %s returned a restricted value",
						        m->path, who[w].label);
						if (who[w].role == ROLE_RUNTIME && perm == 'X')
							ck_assert_msg(has,
							              "the runtime's resolve lacks "
							              "the restricted value");
						protobuf_c_message_free_unpacked(resp, NULL);
					}
					checked++;
				}
			}
		}
		coffer_channel_free(c);
	}
	printf("permission matrix: %d calls checked, %d let through\n", checked, allowed_calls);
	ck_assert_int_ge(checked, 12 * 23);
}
END_TEST

START_TEST(revoked_and_expired_tokens_are_refused_at_once)
{
	start_auth_server();
	char secret[128], id[32], short_lived[128];
	make_token("revoke-me", ROLE_VIEWER, project, NULL, 0, 0, secret, id);
	make_token("short", ROLE_VIEWER, project, NULL, 0, 1, short_lived, NULL);
	coffer_channel *v = chan_as(secret), *s = chan_as(short_lived);
	Coffer__V1__GetProjectRequest g = COFFER__V1__GET_PROJECT_REQUEST__INIT;
	g.name = project;
	Coffer__V1__Project *p = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_projects_get_project(v, &g, &p, &err), 0);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	ck_assert_int_eq(coffer_v1_projects_get_project(s, &g, &p, &err), 0);
	protobuf_c_message_free_unpacked(&p->base, NULL);

	coffer_channel *a = chan_as(admin_token);
	Coffer__V1__RevokeTokenRequest r = COFFER__V1__REVOKE_TOKEN_REQUEST__INIT;
	r.id = id;
	Google__Protobuf__Empty *e = NULL;
	ck_assert_int_eq(coffer_v1_access_revoke_token(a, &r, &e, &err), 0);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	EXPECT_CODE(coffer_v1_access_revoke_token(a, &r, (Google__Protobuf__Empty **)&resp_, &err_),
	            5);
	EXPECT_CODE(coffer_v1_projects_get_project(v, &g, (Coffer__V1__Project **)&resp_, &err_),
	            16);
	usleep(1300 * 1000);
	EXPECT_CODE(coffer_v1_projects_get_project(s, &g, (Coffer__V1__Project **)&resp_, &err_),
	            16);

	/* listing shows neither the revoked token nor any secret */
	Coffer__V1__ListTokensRequest l = COFFER__V1__LIST_TOKENS_REQUEST__INIT;
	l.project = project;
	Coffer__V1__ListTokensResponse *lr = NULL;
	ck_assert_int_eq(coffer_v1_access_list_tokens(a, &l, &lr, &err), 0);
	ck_assert_uint_gt(lr->n_tokens, 0);
	for (size_t i = 0; i < lr->n_tokens; i++) {
		ck_assert_str_ne(lr->tokens[i]->id, id);
		ck_assert_str_eq(lr->tokens[i]->project, project);
	}
	size_t len = protobuf_c_message_get_packed_size(&lr->base);
	uint8_t *buf = malloc(len + 1);
	protobuf_c_message_pack(&lr->base, buf);
	ck_assert_ptr_null(memmem(buf, len, "coffer_", 7));
	free(buf);
	protobuf_c_message_free_unpacked(&lr->base, NULL);
	/* and the database holds hashes only */
	const char *vals[1] = {secret};
	PGresult *q = sql("SELECT count(*) FROM tokens WHERE position(convert_to($1, 'UTF8') IN "
	                  "secret_hash) > 0 "
	                  "OR name = $1 OR id = $1",
	                  1, vals);
	ck_assert_str_eq(PQgetvalue(q, 0, 0), "0");
	PQclear(q);
	coffer_channel_free(a);
	coffer_channel_free(v);
	coffer_channel_free(s);
}
END_TEST

START_TEST(audit_rows_for_every_kind_of_call)
{
	start_auth_server();
	char editor[128], runtime[128];
	make_token("a-editor", ROLE_EDITOR, project, NULL, 0, 0, editor, NULL);
	make_token("a-runtime", ROLE_RUNTIME, project, NULL, 0, 0, runtime, NULL);
	coffer_channel *ed = chan_as(editor), *rt = chan_as(runtime), *none = chan_as(NULL);
	coffer_error err;
	/* a write, a reveal, a resolve, a refused call of each kind */
	Coffer__V1__UpdateSecretRequest u = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	u.project = project;
	u.name = "API_KEY";
	u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	u.value = canary;
	Coffer__V1__Secret *s = NULL;
	ck_assert_int_eq(coffer_v1_secrets_update_secret(ed, &u, &s, &err), 0);
	int64_t write_rev = s->revision;
	protobuf_c_message_free_unpacked(&s->base, NULL);
	Coffer__V1__RevealSecretRequest rv = COFFER__V1__REVEAL_SECRET_REQUEST__INIT;
	rv.project = project;
	rv.name = "API_KEY";
	Coffer__V1__RevealSecretResponse *rr = NULL;
	ck_assert_int_eq(coffer_v1_secrets_reveal_secret(ed, &rv, &rr, &err), 0);
	protobuf_c_message_free_unpacked(&rr->base, NULL);
	Coffer__V1__ResolveSecretsRequest q = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	q.project = project;
	q.environment = "staging";
	q.version = COFFER__V1__VERSION__VERSION_LIVE;
	Coffer__V1__ResolveSecretsResponse *res = NULL;
	ck_assert_int_eq(coffer_v1_secrets_resolve_secrets(rt, &q, &res, &err), 0);
	protobuf_c_message_free_unpacked(&res->base, NULL);
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    ed, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            7);
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    none, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            16);

	coffer_channel *a = chan_as(admin_token);
	Coffer__V1__ListAuditEventsRequest l = COFFER__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
	l.project = project;
	l.page_size = 1000;
	Coffer__V1__ListAuditEventsResponse *lr = NULL;
	bool write = false, reveal = false, resolve = false, denied = false, unauth = false,
	     token_op = false;
	/* Calls without a valid token are counted and written within seconds, not one by one. */
	for (int tries = 0; tries < 50 && !unauth; tries++) {
		if (lr) {
			protobuf_c_message_free_unpacked(&lr->base, NULL);
			usleep(100 * 1000);
		}
		ck_assert_int_eq(coffer_v1_access_list_audit_events(a, &l, &lr, &err), 0);
		for (size_t i = 0; i < lr->n_events; i++)
			unauth =
			        unauth || (strstr(lr->events[i]->method, "ResolveSecrets") &&
			                   lr->events[i]->code == 16 && lr->events[i]->count >= 1 &&
			                   *lr->events[i]->token_id == '\0');
	}
	for (size_t i = 0; i < lr->n_events; i++) {
		const Coffer__V1__AuditEvent *ev = lr->events[i];
		ck_assert_str_eq(ev->project, project);
		ck_assert_ptr_nonnull(ev->time);
		ck_assert(*ev->peer);
		ck_assert_int_ge(ev->count, 1);
		if (strstr(ev->method, "UpdateSecret") && ev->code == 0 &&
		    ev->revision == write_rev && strcmp(ev->secret, "API_KEY") == 0 &&
		    strncmp(ev->token_id, "tok_", 4) == 0)
			write = true;
		if (strstr(ev->method, "RevealSecret") && ev->code == 0 &&
		    ev->revision == write_rev)
			reveal = true;
		if (strstr(ev->method, "ResolveSecrets") && ev->code == 0 &&
		    strcmp(ev->environment, "staging") == 0 && ev->version == 2 && ev->revision > 0)
			resolve = true;
		if (strstr(ev->method, "ResolveSecrets") && ev->code == 7)
			denied = true;
		if (strstr(ev->method, "CreateToken") && ev->code == 0)
			token_op = true;
		/* reads that succeed leave no row */
		ck_assert_msg(!(strstr(ev->method, "/GetProject") && ev->code == 0),
		              "a read was audited");
	}
	ck_assert_msg(write && reveal && resolve && denied && unauth && token_op,
	              "missing rows: write %d reveal %d resolve %d denied %d unauth %d token %d",
	              write, reveal, resolve, denied, unauth, token_op);
	size_t len = protobuf_c_message_get_packed_size(&lr->base);
	uint8_t *buf = malloc(len + 1);
	protobuf_c_message_pack(&lr->base, buf);
	ck_assert_ptr_null(memmem(buf, len, canary, strlen(canary)));
	ck_assert_ptr_null(memmem(buf, len, "masked-value", 12));
	free(buf);
	protobuf_c_message_free_unpacked(&lr->base, NULL);
	PGresult *r =
	        sql("SELECT count(*) FROM audit_events WHERE (token_id || method || project || "
	            "environment || secret || peer) LIKE '%canary%'",
	            0, NULL);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);

	/* The audit log made unwritable: resolves and writes are refused, nothing changes. */
	audit_log_break();
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    rt, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            14);
	u.value = "while-audit-is-down";
	EXPECT_CODE(coffer_v1_secrets_update_secret(ed, &u, (Coffer__V1__Secret **)&resp_, &err_),
	            14);
	EXPECT_CODE(coffer_v1_secrets_reveal_secret(
	                    ed, &rv, (Coffer__V1__RevealSecretResponse **)&resp_, &err_),
	            14);
	audit_log_mend();
	ck_assert_int_eq(coffer_v1_secrets_resolve_secrets(rt, &q, &res, &err), 0);
	for (size_t i = 0; i < res->n_secrets; i++)
		if (strcmp(res->secrets[i]->name, "API_KEY") == 0)
			ck_assert_str_eq(res->secrets[i]->value, canary);
	protobuf_c_message_free_unpacked(&res->base, NULL);
	coffer_channel_free(a);
	coffer_channel_free(ed);
	coffer_channel_free(rt);
	coffer_channel_free(none);
}
END_TEST

START_TEST(rate_limit_per_token)
{
	start_auth_server();
	struct settings c2 = cfg;
	c2.insecure_no_auth = false;
	c2.listen = "127.0.0.1:0";
	c2.rate_limit = 5;
	c2.rate_burst = 5;
	struct server *limited = NULL;
	struct cof_err e = {0};
	ck_assert_int_eq(server_start(&c2, 5, &limited, &e), 0);
	char addr[64], busy[128], other_tok[128];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", server_port(limited));
	make_token("rl-busy", ROLE_VIEWER, project, NULL, 0, 0, busy, NULL);
	make_token("rl-other", ROLE_VIEWER, project, NULL, 0, 0, other_tok, NULL);
	coffer_channel_options o = {.target = addr, .token = busy, .timeout_ms = 5000};
	coffer_channel *c = NULL, *d = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_channel_new(&o, &c, &err), 0);
	o.token = other_tok;
	ck_assert_int_eq(coffer_channel_new(&o, &d, &err), 0);
	Coffer__V1__GetProjectRequest g = COFFER__V1__GET_PROJECT_REQUEST__INIT;
	g.name = project;
	int ok = 0, exhausted = 0;
	for (int i = 0; i < 15; i++) {
		Coffer__V1__Project *p = NULL;
		if (coffer_v1_projects_get_project(c, &g, &p, &err) == 0) {
			ok++;
			protobuf_c_message_free_unpacked(&p->base, NULL);
		} else {
			ck_assert_int_eq(err.code, 8 /* RESOURCE_EXHAUSTED */);
			ck_assert_ptr_nonnull(strstr(err.message, "rate limit"));
			exhausted++;
		}
	}
	printf("rate limit 5/s, burst 5: %d of 15 quick calls served, %d refused\n", ok, exhausted);
	ck_assert_int_ge(ok, 5);
	ck_assert_int_le(ok, 10);
	ck_assert_int_ge(exhausted, 5);
	/* another token has its own bucket; the first refills with time */
	Coffer__V1__Project *p = NULL;
	ck_assert_int_eq(coffer_v1_projects_get_project(d, &g, &p, &err), 0);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	usleep(1100 * 1000);
	ck_assert_int_eq(coffer_v1_projects_get_project(c, &g, &p, &err), 0);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	coffer_channel_free(c);
	coffer_channel_free(d);
	server_stop(limited, 1);
}
END_TEST

/* ---- TLS ---- */

static struct server *tls_server(bool mtls, char *addr)
{
	struct settings c2 = cfg;
	c2.listen = "127.0.0.1:0";
	with_tls(&c2, mtls);
	struct server *made = NULL;
	struct cof_err e = {0};
	ck_assert_msg(server_start(&c2, 5, &made, &e) == 0, "%s", e.msg);
	snprintf(addr, 64, "127.0.0.1:%d", server_port(made));
	return made;
}

static int health(const char *addr, const char *ca, const char *cert, const char *key)
{
	char cpath[128] = "", kpath[128] = "", capath[128] = "";
	if (ca)
		snprintf(capath, sizeof(capath), "%s/%s", test_certs(), ca);
	if (cert)
		snprintf(cpath, sizeof(cpath), "%s/%s", test_certs(), cert);
	if (key)
		snprintf(kpath, sizeof(kpath), "%s/%s", test_certs(), key);
	coffer_channel_options o = {.target = addr,
	                            .ca_file = ca ? capath : NULL,
	                            .cert_file = cert ? cpath : NULL,
	                            .key_file = key ? kpath : NULL,
	                            .timeout_ms = 3000};
	coffer_channel *c = NULL;
	coffer_error err = {0};
	ck_assert_int_eq(coffer_channel_new(&o, &c, &err), 0);
	Grpc__Health__V1__HealthCheckRequest h = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *r = NULL;
	if (grpc_health_v1_health_check(c, &h, &r, &err) == 0)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	coffer_channel_free(c);
	return err.code;
}

START_TEST(tls_and_mtls_from_c)
{
	char addr[64], maddr[64];
	struct server *tls = tls_server(false, addr);
	struct server *mtls = tls_server(true, maddr);
	ck_assert_int_eq(health(addr, "ca.crt", NULL, NULL), 0);
	ck_assert_int_eq(health(addr, NULL, NULL, NULL), 14); /* plaintext client */
	ck_assert_int_eq(health(addr, "other-ca.crt", NULL, NULL),
	                 14); /* does not trust the server */
	ck_assert_int_eq(health(maddr, "ca.crt", "client.crt", "client.key"), 0);
	ck_assert_int_eq(health(maddr, "ca.crt", NULL, NULL), 14); /* no client certificate */
	ck_assert_int_eq(health(maddr, "ca.crt", "stranger.crt", "stranger.key"), 14);
	server_stop(tls, 1);
	server_stop(mtls, 1);
}
END_TEST

START_TEST(tokens_do_not_outlive_their_project)
{
	start_auth_server();
	const char *p = uniq("reborn");
	coffer_channel *a = chan_as(admin_token);
	Coffer__V1__CreateProjectRequest cp = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	cp.name = (char *)p;
	Coffer__V1__Project *pr = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_projects_create_project(a, &cp, &pr, &err), 0);
	protobuf_c_message_free_unpacked(&pr->base, NULL);
	char secret[128], id[32];
	make_token("reborn-runtime", ROLE_RUNTIME, p, NULL, 0, 0, secret, id);
	coffer_channel *rt = chan_as(secret);
	Coffer__V1__ResolveSecretsRequest q = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	q.project = (char *)p;
	q.environment = "main";
	q.version = COFFER__V1__VERSION__VERSION_LIVE;
	Coffer__V1__ResolveSecretsResponse *res = NULL;
	ck_assert_int_eq(coffer_v1_secrets_resolve_secrets(rt, &q, &res, &err), 0);
	protobuf_c_message_free_unpacked(&res->base, NULL);
	/* The project goes, and a new one takes its name, with a restricted value. */
	Coffer__V1__DeleteProjectRequest d = COFFER__V1__DELETE_PROJECT_REQUEST__INIT;
	d.name = (char *)p;
	Google__Protobuf__Empty *empty = NULL;
	ck_assert_int_eq(coffer_v1_projects_delete_project(a, &d, &empty, &err), 0);
	protobuf_c_message_free_unpacked(&empty->base, NULL);
	ck_assert_int_eq(coffer_v1_projects_create_project(a, &cp, &pr, &err), 0);
	protobuf_c_message_free_unpacked(&pr->base, NULL);
	Coffer__V1__CreateSecretRequest cs = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	cs.project = (char *)p;
	cs.name = "NEW_PROJECTS_PASSWORD";
	cs.value = "not-for-the-old-token";
	cs.visibility = COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED;
	Coffer__V1__Secret *sec = NULL;
	ck_assert_int_eq(coffer_v1_secrets_create_secret(a, &cs, &sec, &err), 0);
	protobuf_c_message_free_unpacked(&sec->base, NULL);
	/* The old token reaches nothing of it, and is not listed as one of its tokens. */
	EXPECT_CODE(coffer_v1_secrets_resolve_secrets(
	                    rt, &q, (Coffer__V1__ResolveSecretsResponse **)&resp_, &err_),
	            COFFER_UNAUTHENTICATED);
	Coffer__V1__ListTokensRequest lt = COFFER__V1__LIST_TOKENS_REQUEST__INIT;
	lt.project = (char *)p;
	Coffer__V1__ListTokensResponse *ltr = NULL;
	ck_assert_int_eq(coffer_v1_access_list_tokens(a, &lt, &ltr, &err), 0);
	ck_assert_uint_eq(ltr->n_tokens, 0);
	protobuf_c_message_free_unpacked(&ltr->base, NULL);
	coffer_channel_free(rt);
	coffer_channel_free(a);
}
END_TEST

/* The auth server's counter of calls of method that ended with code; with want, once it has
 * settled there. */
static long long calls_settled(const char *method, const char *code, long long want)
{
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "coffer_calls_total{method=\"%s\",code=\"%s\"} ", method,
	         code);
	return want < 0 ? metric_value(server_metrics_port(auth_srv), prefix)
	                : metric_settled(server_metrics_port(auth_srv), prefix, want);
}

static long long calls(const char *method, const char *code)
{
	return calls_settled(method, code, -1);
}

START_TEST(refused_calls_are_sent_once_and_writes_repeated_only_when_nothing_was_written)
{
	start_auth_server();
	char viewer[128], editor[128], id[32];
	make_token("once-viewer", ROLE_VIEWER, project, NULL, 0, 0, viewer, id);
	make_token("once-editor", ROLE_EDITOR, project, NULL, 0, 0, editor, id);
	coffer_channel_options o = {
	        .target = auth_target, .token = viewer, .timeout_ms = 20000, .max_retries = 4};
	coffer_channel *v = NULL, *ed = NULL, *a = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_channel_new(&o, &v, &err), 0);
	o.token = editor;
	ck_assert_int_eq(coffer_channel_new(&o, &ed, &err), 0);
	o.token = admin_token;
	o.max_retries = 2;
	ck_assert_int_eq(coffer_channel_new(&o, &a, &err), 0);
	/* A refusal goes over the wire once, whatever the retries allowed. */
	const char *reveal = "/coffer.v1.Secrets/RevealSecret";
	long long denied = calls(reveal, "PERMISSION_DENIED");
	Coffer__V1__RevealSecretRequest rv = COFFER__V1__REVEAL_SECRET_REQUEST__INIT;
	rv.project = project;
	rv.name = "API_KEY";
	EXPECT_CODE(coffer_v1_secrets_reveal_secret(
	                    v, &rv, (Coffer__V1__RevealSecretResponse **)&resp_, &err_),
	            COFFER_PERMISSION_DENIED);
	ck_assert_int_eq(calls_settled(reveal, "PERMISSION_DENIED", denied + 1), denied + 1);
	/* With the audit log down, a write answers UNAVAILABLE and says it wrote nothing: the
	 * client may send it again (1 + 4 attempts), and nothing was written by any of them. */
	const char *update = "/coffer.v1.Secrets/UpdateSecret";
	long long unavailable = calls(update, "UNAVAILABLE");
	PGresult *t = sql("SELECT count(*) FROM tokens", 0, NULL);
	long long tokens = atoll(PQgetvalue(t, 0, 0));
	PQclear(t);
	audit_log_break();
	Coffer__V1__UpdateSecretRequest u = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	u.project = project;
	u.name = "API_KEY";
	u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	u.value = "written-while-the-audit-log-is-down";
	EXPECT_CODE(coffer_v1_secrets_update_secret(ed, &u, (Coffer__V1__Secret **)&resp_, &err_),
	            COFFER_UNAVAILABLE);
	ck_assert_int_eq(calls_settled(update, "UNAVAILABLE", unavailable + 5), unavailable + 5);
	/* A token is created with its audit row or not at all (it was once left unaudited). */
	Coffer__V1__CreateTokenRequest ct = COFFER__V1__CREATE_TOKEN_REQUEST__INIT;
	ct.name = "while-the-audit-log-is-down";
	ct.role = COFFER__V1__ROLE__ROLE_ADMIN;
	EXPECT_CODE(coffer_v1_access_create_token(
	                    a, &ct, (Coffer__V1__CreateTokenResponse **)&resp_, &err_),
	            COFFER_UNAVAILABLE);
	audit_log_mend();
	t = sql("SELECT count(*) FROM tokens", 0, NULL);
	ck_assert_int_eq(atoll(PQgetvalue(t, 0, 0)), tokens);
	PQclear(t);
	rv.name = "API_KEY";
	Coffer__V1__RevealSecretResponse *rr = NULL;
	ck_assert_int_eq(coffer_v1_secrets_reveal_secret(ed, &rv, &rr, &err), 0);
	ck_assert_str_ne(rr->value, "written-while-the-audit-log-is-down");
	protobuf_c_message_free_unpacked(&rr->base, NULL);
	coffer_channel_free(v);
	coffer_channel_free(ed);
	coffer_channel_free(a);
}
END_TEST

/* A restricted secret is revealed by no path: RevealSecret of its default, with an environment and
 * a version (its default through the environment, or an override, itself restricted), at every
 * role; and never in an error message. */
START_TEST(a_restricted_secret_is_revealed_by_no_path)
{
	start_auth_server();
	coffer_channel *a = chan_as(admin_token);
	const char *p = uniq("sealed");
	Coffer__V1__CreateProjectRequest cp = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	cp.name = (char *)p;
	cp.description = "";
	Coffer__V1__Project *proj = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_v1_projects_create_project(a, &cp, &proj, &err), 0);
	protobuf_c_message_free_unpacked(&proj->base, NULL);
	Coffer__V1__CreateSecretRequest cs = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	cs.project = (char *)p;
	cs.name = "R";
	cs.value = "restricted-canary-default";
	cs.visibility = COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED;
	cs.description = "";
	Coffer__V1__Secret *sec = NULL;
	ck_assert_int_eq(coffer_v1_secrets_create_secret(a, &cs, &sec, &err), 0);
	protobuf_c_message_free_unpacked(&sec->base, NULL);
	Coffer__V1__CreateEnvironmentRequest ce = COFFER__V1__CREATE_ENVIRONMENT_REQUEST__INIT;
	ce.project = (char *)p;
	ce.name = "staging";
	ce.description = "";
	Coffer__V1__Environment *env = NULL;
	ck_assert_int_eq(coffer_v1_environments_create_environment(a, &ce, &env, &err), 0);
	protobuf_c_message_free_unpacked(&env->base, NULL);
	Coffer__V1__SetOverrideRequest so = COFFER__V1__SET_OVERRIDE_REQUEST__INIT;
	so.project = (char *)p;
	so.environment = "staging";
	so.version = COFFER__V1__VERSION__VERSION_DRAFT;
	so.secret = "R";
	so.value = "restricted-canary-override";
	Coffer__V1__Override *ov = NULL;
	ck_assert_int_eq(coffer_v1_environments_set_override(a, &so, &ov, &err), 0);
	protobuf_c_message_free_unpacked(&ov->base, NULL);
	char tok[4][128];
	make_token("sealed-editor", ROLE_EDITOR, p, NULL, 0, 0, tok[1], NULL);
	make_token("sealed-viewer", ROLE_VIEWER, p, NULL, 0, 0, tok[2], NULL);
	make_token("sealed-runtime", ROLE_RUNTIME, p, NULL, 0, 0, tok[3], NULL);
	snprintf(tok[0], sizeof(tok[0]), "%s", admin_token);
	const char *label[4] = {"admin", "editor", "viewer", "runtime"};
	const int want[4] = {9, 9, 7, 7}; /* FAILED_PRECONDITION; PERMISSION_DENIED */
	const struct {
		const char *env;
		int version;
	} paths[] = {
	        {"", 0},
	        {"main", COFFER__V1__VERSION__VERSION_DRAFT},
	        {"main", COFFER__V1__VERSION__VERSION_LIVE},
	        {"staging", COFFER__V1__VERSION__VERSION_DRAFT}, /* its override */
	        {"staging", COFFER__V1__VERSION__VERSION_LIVE},  /* the default through it */
	};
	for (int w = 0; w < 4; w++) {
		coffer_channel *c = chan_as(tok[w]);
		for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
			Coffer__V1__RevealSecretRequest rv =
			        COFFER__V1__REVEAL_SECRET_REQUEST__INIT;
			rv.project = (char *)p;
			rv.name = "R";
			rv.environment = (char *)paths[k].env;
			rv.version = paths[k].version;
			Coffer__V1__RevealSecretResponse *r = NULL;
			coffer_error e = {0};
			int rc = coffer_v1_secrets_reveal_secret(c, &rv, &r, &e);
			ck_assert_msg(rc != 0, "%s revealed R in (%s, %d)", label[w], paths[k].env,
			              paths[k].version);
			ck_assert_msg(e.code == want[w], "%s, (%s, %d): %s %s", label[w],
			              paths[k].env, paths[k].version, coffer_code_name(e.code),
			              e.message);
			ck_assert_ptr_null(strstr(e.message, "canary"));
		}
		coffer_channel_free(c);
	}
	coffer_channel_free(a);
}
END_TEST

TCase *tcase_access(void)
{
	TCase *tc = tcase_create("access");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, NULL, audit_log_mend);
	test_add(tc, permission_matrix);
	test_add(tc, revoked_and_expired_tokens_are_refused_at_once);
	test_add(tc, audit_rows_for_every_kind_of_call);
	test_add(tc, rate_limit_per_token);
	test_add(tc, tls_and_mtls_from_c);
	test_add(tc, tokens_do_not_outlive_their_project);
	test_add(tc, a_restricted_secret_is_revealed_by_no_path);
	test_add(tc, refused_calls_are_sent_once_and_writes_repeated_only_when_nothing_was_written);
	return tc;
}

const char *access_admin_token(void)
{
	start_auth_server();
	return admin_token;
}

void access_tests_cleanup(void)
{
	server_stop(auth_srv, 1);
	auth_srv = NULL;
}
