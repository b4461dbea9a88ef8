/* helpers.c - shared integration-test helpers (see helpers.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <grpc/support/time.h>

#include "helpers.h"
#include "coffer/v1/access.stub.h"
#include "coffer/v1/secrets.stub.h"

const char *uniq(const char *prefix)
{
	static char buf[16][64];
	static int n;
	char *b = buf[n++ % 16];
	snprintf(b, 64, "%s-%d-%d", prefix, (int)getpid(), n);
	return b;
}

coffer_channel *channel(int timeout_ms)
{
	coffer_channel_options o = {.target = target, .timeout_ms = timeout_ms};
	coffer_channel *c = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_channel_new(&o, &c, &err), 0);
	return c;
}

void create_project(const char *name)
{
	Coffer__V1__CreateProjectRequest req = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	req.name = (char *)name;
	Coffer__V1__Project *p = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_projects_create_project(ch, &req, &p, &err) == 0, "%s",
	              err.message);
	protobuf_c_message_free_unpacked(&p->base, NULL);
}

int64_t project_revision(const char *name)
{
	Coffer__V1__GetProjectRequest req = COFFER__V1__GET_PROJECT_REQUEST__INIT;
	req.name = (char *)name;
	Coffer__V1__Project *p = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_projects_get_project(ch, &req, &p, &err) == 0, "%s", err.message);
	int64_t rev = p->revision;
	protobuf_c_message_free_unpacked(&p->base, NULL);
	return rev;
}

int create_secret(const char *project, const char *name, const char *value, int vis,
                  coffer_error *err)
{
	Coffer__V1__CreateSecretRequest req = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	req.project = (char *)project;
	req.name = (char *)name;
	req.value = (char *)value;
	req.visibility = vis;
	Coffer__V1__Secret *s = NULL;
	int rc = coffer_v1_secrets_create_secret(ch, &req, &s, err);
	if (s)
		protobuf_c_message_free_unpacked(&s->base, NULL);
	return rc;
}

void must_create_secret(const char *project, const char *name, const char *value, int vis)
{
	coffer_error err;
	ck_assert_msg(create_secret(project, name, value, vis, &err) == 0, "%s", err.message);
}

const char *test_certs(void)
{
	static char dir[64];
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/coffer-certs-%d", (int)getpid());
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "%s/tests/tls/make-certs.sh %s", COFFER_SOURCE_DIR, dir);
		ck_assert_msg(system(cmd) == 0, "%s", cmd);
	}
	return dir;
}

void with_tls(struct settings *c, bool mtls)
{
	static char cert[128], key[128], ca[128];
	snprintf(cert, sizeof(cert), "%s/server.crt", test_certs());
	snprintf(key, sizeof(key), "%s/server.key", test_certs());
	snprintf(ca, sizeof(ca), "%s/ca.crt", test_certs());
	c->tls_cert_file = cert;
	c->tls_key_file = key;
	c->tls_client_ca_file = mtls ? ca : "";
}

void large_secrets(coffer_channel *c, const char *project, int n)
{
	char *big = malloc(60001);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 60000);
	big[60000] = '\0';
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "LARGE_%02d", i);
		Coffer__V1__CreateSecretRequest cs = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
		cs.project = (char *)project;
		cs.name = name;
		cs.value = big;
		Coffer__V1__Secret *sec = NULL;
		coffer_error err;
		ck_assert_msg(coffer_v1_secrets_create_secret(c, &cs, &sec, &err) == 0, "%s",
		              err.message);
		protobuf_c_message_free_unpacked(&sec->base, NULL);
	}
	free(big);
}

/* Reveals the project default; returns the gRPC code; *value (malloc'd) on OK. */
int reveal(coffer_channel *c, const char *project, const char *name, char **value,
           coffer_error *err)
{
	Coffer__V1__RevealSecretRequest req = COFFER__V1__REVEAL_SECRET_REQUEST__INIT;
	req.project = (char *)project;
	req.name = (char *)name;
	Coffer__V1__RevealSecretResponse *r = NULL;
	if (value)
		*value = NULL;
	if (coffer_v1_secrets_reveal_secret(c, &req, &r, err) != 0)
		return err->code;
	if (value)
		*value = strdup(r->value);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

char *must_reveal(const char *project, const char *name)
{
	char *v = NULL;
	coffer_error err;
	ck_assert_msg(reveal(ch, project, name, &v, &err) == 0, "%s", err.message);
	return v;
}

Coffer__V1__Secret *get_secret(const char *project, const char *name)
{
	Coffer__V1__GetSecretRequest req = COFFER__V1__GET_SECRET_REQUEST__INIT;
	req.project = (char *)project;
	req.name = (char *)name;
	Coffer__V1__Secret *s = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_secrets_get_secret(ch, &req, &s, &err) == 0, "%s", err.message);
	return s;
}

PGresult *sql(const char *q, int n, const char *const *vals)
{
	PGresult *r = PQexecParams(admin, q, n, NULL, vals, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
	              "%s: %s", q, PQerrorMessage(admin));
	return r;
}

char *value_row_id(const char *project, const char *name)
{
	const char *vals[2] = {project, name};
	PGresult *r =
	        sql("SELECT v.id FROM secret_values v JOIN secrets s ON s.id = v.secret_id "
	            "JOIN projects p ON p.id = s.project_id WHERE p.name = $1 AND s.name = $2 "
	            "AND s.deleted_rev IS NULL AND v.valid_to IS NULL AND v.version = 0",
	            2, vals);
	ck_assert_int_eq(PQntuples(r), 1);
	char *id = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return id;
}

void env_create(const char *project, const char *name)
{
	Coffer__V1__CreateEnvironmentRequest req = COFFER__V1__CREATE_ENVIRONMENT_REQUEST__INIT;
	req.project = (char *)project;
	req.name = (char *)name;
	Coffer__V1__Environment *e = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_environments_create_environment(ch, &req, &e, &err) == 0, "%s",
	              err.message);
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

int64_t env_revision(const char *project, const char *name)
{
	Coffer__V1__GetEnvironmentRequest req = COFFER__V1__GET_ENVIRONMENT_REQUEST__INIT;
	req.project = (char *)project;
	req.name = (char *)name;
	Coffer__V1__Environment *e = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_environments_get_environment(ch, &req, &e, &err) == 0, "%s",
	              err.message);
	int64_t rev = e->revision;
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return rev;
}

int set_override(const char *project, const char *env, int version, const char *secret,
                 const char *value, int64_t expected, coffer_error *err)
{
	Coffer__V1__SetOverrideRequest req = COFFER__V1__SET_OVERRIDE_REQUEST__INIT;
	req.project = (char *)project;
	req.environment = (char *)env;
	req.version = version;
	req.secret = (char *)secret;
	req.value = (char *)value;
	req.expected_revision = expected;
	Coffer__V1__Override *o = NULL;
	int rc = coffer_v1_environments_set_override(ch, &req, &o, err);
	if (o) {
		ck_assert_str_eq(o->secret, secret);
		ck_assert_int_eq(o->version, version);
		ck_assert_ptr_nonnull(o->update_time);
		protobuf_c_message_free_unpacked(&o->base, NULL);
	}
	return rc;
}

int delete_override(const char *project, const char *env, int version, const char *secret,
                    int64_t expected, coffer_error *err)
{
	Coffer__V1__DeleteOverrideRequest req = COFFER__V1__DELETE_OVERRIDE_REQUEST__INIT;
	req.project = (char *)project;
	req.environment = (char *)env;
	req.version = version;
	req.secret = (char *)secret;
	req.expected_revision = expected;
	Google__Protobuf__Empty *e = NULL;
	int rc = coffer_v1_environments_delete_override(ch, &req, &e, err);
	if (e)
		protobuf_c_message_free_unpacked(&e->base, NULL);
	return rc;
}

int64_t override_revision(const char *project, const char *env, int version, const char *secret)
{
	Coffer__V1__ListOverridesRequest req = COFFER__V1__LIST_OVERRIDES_REQUEST__INIT;
	req.project = (char *)project;
	req.environment = (char *)env;
	req.version = version;
	req.page_size = 1000;
	Coffer__V1__ListOverridesResponse *r = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_environments_list_overrides(ch, &req, &r, &err) == 0, "%s",
	              err.message);
	int64_t rev = 0;
	for (size_t i = 0; i < r->n_overrides; i++)
		if (strcmp(r->overrides[i]->secret, secret) == 0)
			rev = r->overrides[i]->revision;
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return rev;
}

int count_overrides(const char *project, const char *env, int version, int page_size)
{
	int n = 0;
	char *token = strdup("");
	char last[160] = "";
	do {
		Coffer__V1__ListOverridesRequest req = COFFER__V1__LIST_OVERRIDES_REQUEST__INIT;
		req.project = (char *)project;
		req.environment = (char *)env;
		req.version = version;
		req.page_size = page_size;
		req.page_token = token;
		Coffer__V1__ListOverridesResponse *r = NULL;
		coffer_error err;
		ck_assert_msg(coffer_v1_environments_list_overrides(ch, &req, &r, &err) == 0, "%s",
		              err.message);
		ck_assert_int_le((int)r->n_overrides, page_size);
		for (size_t i = 0; i < r->n_overrides; i++, n++) {
			char key[160];
			snprintf(key, sizeof(key), "%s/%d", r->overrides[i]->secret,
			         r->overrides[i]->version);
			ck_assert_msg(strcmp(key, last) > 0, "order: %s after %s", key, last);
			snprintf(last, sizeof(last), "%s", key);
			if (version)
				ck_assert_int_eq(r->overrides[i]->version, version);
		}
		free(token);
		token = strdup(r->next_page_token);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} while (*token);
	free(token);
	return n;
}

void update_value(const char *project, const char *name, const char *value)
{
	Coffer__V1__UpdateSecretRequest u = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	u.project = (char *)project;
	u.name = (char *)name;
	u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	u.value = (char *)value;
	Coffer__V1__Secret *s = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_secrets_update_secret(ch, &u, &s, &err) == 0, "%s", err.message);
	protobuf_c_message_free_unpacked(&s->base, NULL);
}

int merge(const char *project, const char *source, const char *into, bool dry_run,
          int64_t expected_source, int64_t expected_target, bool delete_source,
          Coffer__V1__MergeEnvironmentResponse **out, coffer_error *err)
{
	Coffer__V1__MergeEnvironmentRequest req = COFFER__V1__MERGE_ENVIRONMENT_REQUEST__INIT;
	req.project = (char *)project;
	req.source = (char *)source;
	req.target = (char *)into;
	req.dry_run = dry_run;
	req.expected_source_revision = expected_source;
	req.expected_target_revision = expected_target;
	req.delete_source = delete_source;
	*out = NULL;
	return coffer_v1_environments_merge_environment(ch, &req, out, err);
}

static int resolve_raw(const char *project, const char *env, int version, int64_t at,
                       Coffer__V1__ResolveSecretsResponse **out, coffer_error *err)
{
	Coffer__V1__ResolveSecretsRequest req = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	req.project = (char *)project;
	req.environment = (char *)env;
	req.version = version;
	req.at_revision = at;
	*out = NULL;
	return coffer_v1_secrets_resolve_secrets(ch, &req, out, err);
}

void resolve_into(const char *project, const char *env, int version, int64_t at, struct resolved *r)
{
	coffer_error err;
	ck_assert_msg(resolve_raw(project, env, version, at, &r->resp, &err) == 0,
	              "resolve %s/%s/%d@%ld: %s", project, env, version, (long)at, err.message);
	for (size_t i = 1; i < r->resp->n_secrets; i++)
		ck_assert(strcmp(r->resp->secrets[i - 1]->name, r->resp->secrets[i]->name) < 0);
}

int resolve_code(const char *project, const char *env, int version, int64_t at)
{
	Coffer__V1__ResolveSecretsResponse *resp = NULL;
	coffer_error err = {0};
	if (resolve_raw(project, env, version, at, &resp, &err) == 0)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return err.code;
}

static const Coffer__V1__ResolvedSecret *find_resolved(const struct resolved *r, const char *name)
{
	for (size_t i = 0; i < r->resp->n_secrets; i++)
		if (strcmp(r->resp->secrets[i]->name, name) == 0)
			return r->resp->secrets[i];
	return NULL;
}

const char *resolved_value(const struct resolved *r, const char *name)
{
	const Coffer__V1__ResolvedSecret *s = find_resolved(r, name);
	return s ? s->value : NULL;
}

int resolved_source(const struct resolved *r, const char *name)
{
	const Coffer__V1__ResolvedSecret *s = find_resolved(r, name);
	return s ? (int)s->source : 0;
}

void resolved_clear(struct resolved *r)
{
	if (r->resp)
		protobuf_c_message_free_unpacked(&r->resp->base, NULL);
	r->resp = NULL;
}

/* GET path from the metrics listener; the whole response. */
char *http_get(int port, const char *path)
{
	return http_get_as(port, path, NULL);
}

char *http_get_as(int port, const char *path, const char *token)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct timeval tv = {15, 0}; /* a listener that never answers fails the test */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char req[1024];
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s\r\n", path,
	                 token ? "Authorization: Bearer " : "", token ? token : "",
	                 token ? "\r\n" : "");
	ck_assert_int_eq(write(fd, req, (size_t)n), n);
	size_t cap = 1 << 20, len = 0;
	char *out = malloc(cap);
	ssize_t r;
	while ((r = read(fd, out + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = '\0';
	close(fd);
	ck_assert_msg(r == 0, "the HTTP listener on port %d did not answer", port);
	return out;
}

long long metric_value(int port, const char *prefix)
{
	char *body = http_get(port, "/metrics");
	long long v = 0;
	for (char *line = body; line && *line;) {
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			v = atoll(line + strlen(prefix));
		char *nl = strchr(line, '\n');
		line = nl ? nl + 1 : NULL;
	}
	free(body);
	return v;
}

long long metric_settled(int port, const char *prefix, long long want)
{
	long long v = metric_value(port, prefix);
	for (int i = 0; i < 50 && v < want; i++) {
		usleep(100 * 1000);
		v = metric_value(port, prefix);
	}
	usleep(100 * 1000);
	return metric_value(port, prefix);
}

void audit_log_break(void)
{
	PQclear(sql("ALTER TABLE audit_events ADD CONSTRAINT audit_closed CHECK (false) NOT VALID",
	            0, NULL));
}

void audit_log_mend(void)
{
	PQclear(sql("ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS audit_closed", 0, NULL));
}

/* ---- servers with authentication, and what the replica and watch tests do through them ---- */

/* A replica with authentication on; settings changed by the caller. */
struct server *start_replica(struct settings *c, char *addr, size_t cap)
{
	(void)access_admin_token(); /* the first token exists, so that a replica may start */
	c->insecure_no_auth = false;
	c->bootstrap_token_file = NULL;
	c->listen = "127.0.0.1:0";
	struct cof_err e = {0};
	struct server *s = NULL;
	ck_assert_msg(server_start(c, 5, &s, &e) == 0, "%s %s", e.msg, e.detail);
	snprintf(addr, cap, "127.0.0.1:%d", server_port(s));
	return s;
}

coffer_channel *to(const char *addr, const char *token, int timeout_ms)
{
	coffer_channel_options o = {.target = addr, .token = token, .timeout_ms = timeout_ms};
	coffer_channel *c = NULL;
	coffer_error err;
	ck_assert_int_eq(coffer_channel_new(&o, &c, &err), 0);
	return c;
}

/* A project with secret S = value, made through addr. */
void project_with(const char *addr, const char *p, const char *value)
{
	coffer_channel *a = to(addr, access_admin_token(), 20000);
	coffer_error err;
	Coffer__V1__CreateProjectRequest cp = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	cp.name = (char *)p;
	cp.description = "";
	Coffer__V1__Project *proj = NULL;
	ck_assert_msg(coffer_v1_projects_create_project(a, &cp, &proj, &err) == 0, "%s",
	              err.message);
	protobuf_c_message_free_unpacked(&proj->base, NULL);
	Coffer__V1__CreateSecretRequest cs = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	cs.project = (char *)p;
	cs.name = "S";
	cs.value = (char *)value;
	cs.description = "";
	Coffer__V1__Secret *sec = NULL;
	ck_assert_msg(coffer_v1_secrets_create_secret(a, &cs, &sec, &err) == 0, "%s", err.message);
	protobuf_c_message_free_unpacked(&sec->base, NULL);
	coffer_channel_free(a);
}

/* A runtime token of p (secret and id into the buffers). */
void runtime_token(const char *addr, const char *p, char *secret, char *id)
{
	coffer_channel *a = to(addr, access_admin_token(), 20000);
	Coffer__V1__CreateTokenRequest req = COFFER__V1__CREATE_TOKEN_REQUEST__INIT;
	req.name = "replica-test";
	req.role = COFFER__V1__ROLE__ROLE_RUNTIME;
	req.project = (char *)p;
	Coffer__V1__CreateTokenResponse *r = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_access_create_token(a, &req, &r, &err) == 0, "%s", err.message);
	snprintf(secret, 128, "%s", r->secret);
	snprintf(id, 32, "%s", r->token->id);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	coffer_channel_free(a);
}

/* Resolves p's main/live through addr with token: the code; S's value into value (cap 64). */
/* The resolve of p's main/live through addr with token: the code, the response into *out. */
static int resolve_main_live(const char *addr, const char *token, const char *p, char **names,
                             size_t n, int64_t min_revision,
                             Coffer__V1__ResolveSecretsResponse **out, coffer_error *err)
{
	coffer_channel *c = to(addr, token, 10000);
	Coffer__V1__ResolveSecretsRequest req = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	req.project = (char *)p;
	req.environment = "main";
	req.version = COFFER__V1__VERSION__VERSION_LIVE;
	req.names = names;
	req.n_names = n;
	req.min_revision = min_revision;
	*out = NULL;
	int rc = coffer_v1_secrets_resolve_secrets(c, &req, out, err);
	coffer_channel_free(c);
	return rc;
}

Coffer__V1__ResolveSecretsResponse *must_resolve_names(const char *addr, const char *token,
                                                       const char *p, char **names, size_t n,
                                                       int64_t min_revision)
{
	Coffer__V1__ResolveSecretsResponse *r = NULL;
	coffer_error err = {0};
	ck_assert_msg(resolve_main_live(addr, token, p, names, n, min_revision, &r, &err) == 0,
	              "resolve: %s", err.message);
	return r;
}

int resolve_as(const char *addr, const char *token, const char *p, int64_t min_revision,
               char *value, int64_t *revision)
{
	Coffer__V1__ResolveSecretsResponse *r = NULL;
	coffer_error err = {0};
	int rc = resolve_main_live(addr, token, p, NULL, 0, min_revision, &r, &err);
	if (value)
		value[0] = '\0';
	if (rc == 0) {
		for (size_t i = 0; i < r->n_secrets && value; i++)
			if (strcmp(r->secrets[i]->name, "S") == 0)
				snprintf(value, 64, "%s", r->secrets[i]->value);
		if (revision)
			*revision = r->revision;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	return rc == 0 ? 0 : err.code;
}

/* A token of project p through addr: role, one environment (NULL: any), one version (0: any). */
void token_for(const char *addr, const char *p, int role, const char *env, int version,
               char *secret, char *id)
{
	coffer_channel *a = to(addr, access_admin_token(), 20000);
	Coffer__V1__CreateTokenRequest req = COFFER__V1__CREATE_TOKEN_REQUEST__INIT;
	req.name = "test-token";
	req.role = role;
	req.project = (char *)p;
	char *envs[1] = {(char *)env};
	Coffer__V1__Version v[1] = {version};
	if (env) {
		req.environments = envs;
		req.n_environments = 1;
	}
	if (version) {
		req.versions = v;
		req.n_versions = 1;
	}
	Coffer__V1__CreateTokenResponse *r = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_access_create_token(a, &req, &r, &err) == 0, "%s", err.message);
	snprintf(secret, 128, "%s", r->secret);
	if (id)
		snprintf(id, 32, "%s", r->token->id);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	coffer_channel_free(a);
}

int health_of(const char *addr)
{
	coffer_channel *c = to(addr, NULL, 3000);
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *r = NULL;
	coffer_error err;
	int status = -1;
	if (grpc_health_v1_health_check(c, &req, &r, &err) == 0) {
		status = r->status;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	coffer_channel_free(c);
	return status;
}

/* Sets S of p through addr; the revision written. */
int64_t write_s(const char *addr, const char *p, const char *value)
{
	coffer_channel *a = to(addr, access_admin_token(), 20000);
	Coffer__V1__UpdateSecretRequest req = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	req.project = (char *)p;
	req.name = "S";
	req.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	req.value = (char *)value;
	Coffer__V1__Secret *s = NULL;
	coffer_error err;
	ck_assert_msg(coffer_v1_secrets_update_secret(a, &req, &s, &err) == 0, "%s", err.message);
	int64_t rev = s->revision;
	protobuf_c_message_free_unpacked(&s->base, NULL);
	coffer_channel_free(a);
	return rev;
}

/* ---- a relay that fails like a network ---- */

static void reset_close(int fd)
{
	struct linger l = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	char buf[65536];
	while (!atomic_load(&r->stop)) {
		struct pollfd p[34];
		int n = 0;
		/* Frozen: nothing is accepted or forwarded (the kernel still completes handshakes
		 * and takes what is sent), as a server that hangs. */
		bool frozen = atomic_load(&r->frozen);
		p[n++] = (struct pollfd){r->listen_fd, frozen ? 0 : POLLIN, 0};
		p[n++] = (struct pollfd){r->pipe_fd[0], POLLIN, 0};
		for (int i = 0; i < r->n && !frozen; i++)
			p[n++] = (struct pollfd){r->fds[i], POLLIN, 0};
		if (poll(p, (nfds_t)n, 200) < 0)
			continue;
		if (p[1].revents) {
			char x;
			if (read(r->pipe_fd[0], &x, 1) < 0)
				continue;
		}
		if (atomic_exchange(&r->cut, false)) {
			for (int i = 0; i < r->n; i++)
				reset_close(r->fds[i]);
			r->n = 0;
			continue;
		}
		if ((p[0].revents & POLLIN) && r->n + 2 <= 32) {
			int c = accept(r->listen_fd, NULL, NULL);
			if (atomic_load(&r->refuse)) {
				if (c >= 0)
					reset_close(c);
				continue;
			}
			int s = socket(AF_INET, SOCK_STREAM, 0);
			struct sockaddr_in a = {.sin_family = AF_INET,
			                        .sin_port = htons((uint16_t)r->upstream_port),
			                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
			if (c >= 0 && s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
				r->fds[r->n++] = c;
				r->fds[r->n++] = s;
			} else {
				if (c >= 0)
					close(c);
				if (s >= 0)
					close(s);
			}
			continue;
		}
		for (int i = 0; i < r->n && !frozen; i++) {
			if (!(p[2 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int peer = r->fds[i ^ 1];
			ssize_t got = read(r->fds[i], buf, sizeof(buf));
			if (got <= 0 || write(peer, buf, (size_t)got) != got) {
				close(r->fds[i & ~1]);
				close(r->fds[i | 1]);
				memmove(&r->fds[i & ~1], &r->fds[(i & ~1) + 2],
				        (size_t)(r->n - (i & ~1) - 2) * sizeof(int));
				r->n -= 2;
				break;
			}
		}
	}
	for (int i = 0; i < r->n; i++)
		close(r->fds[i]);
	return NULL;
}

void relay_start(struct relay *r)
{
	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(
	        sscanf(strstr(cfg.database_url, "127.0.0.1:"), "127.0.0.1:%d", &r->upstream_port),
	        1);
	r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	ck_assert_int_eq(bind(r->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(r->listen_fd, 8), 0);
	getsockname(r->listen_fd, (struct sockaddr *)&a, &len);
	r->port = ntohs(a.sin_port);
	ck_assert_int_eq(pipe(r->pipe_fd), 0);
	pthread_create(&r->thread, NULL, relay_main, r);
}

void relay_poke(struct relay *r)
{
	ck_assert_int_eq(write(r->pipe_fd[1], "x", 1), 1);
}

void relay_stop(struct relay *r)
{
	atomic_store(&r->stop, true);
	relay_poke(r);
	pthread_join(r->thread, NULL);
	close(r->listen_fd);
	close(r->pipe_fd[0]);
	close(r->pipe_fd[1]);
}

void relay_url(const struct relay *r, char *url, size_t cap)
{
	snprintf(url, cap, "postgresql://coffer@127.0.0.1:%d%s", r->port,
	         strrchr(cfg.database_url, '/'));
}

void relay_cut(struct relay *r, bool refuse)
{
	atomic_store(&r->refuse, refuse);
	atomic_store(&r->cut, true);
	relay_poke(r);
}

void relay_allow(struct relay *r)
{
	atomic_store(&r->refuse, false);
}

void relay_freeze(struct relay *r, bool frozen)
{
	atomic_store(&r->frozen, frozen);
	relay_poke(r);
}

/* ---- idle streams ---- */

void stream_open(grpc_channel *c, struct open_stream *s)
{
	memset(s, 0, sizeof(*s));
	s->cq = grpc_completion_queue_create_for_pluck(NULL);
	s->call = grpc_channel_create_call(
	        c, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
	        grpc_slice_from_static_string(
	                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
	        NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_metadata_array_init(&s->trailing);
	grpc_metadata_array_init(&s->initial);
	grpc_op ops[3];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
	ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[2].data.recv_status_on_client.trailing_metadata = &s->trailing;
	ops[2].data.recv_status_on_client.status = &s->status;
	ops[2].data.recv_status_on_client.status_details = &s->details;
	ck_assert_int_eq(grpc_call_start_batch(s->call, ops, 3, s, NULL), GRPC_CALL_OK);
}

bool stream_ended(struct open_stream *s, int ms)
{
	if (s->ended)
		return true;
	grpc_event ev = grpc_completion_queue_pluck(
	        s->cq, s,
	        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN)),
	        NULL);
	s->ended = ev.type == GRPC_OP_COMPLETE;
	return s->ended;
}

void stream_close(struct open_stream *s)
{
	grpc_call_cancel(s->call, NULL);
	ck_assert(stream_ended(s, 5000));
	grpc_call_unref(s->call);
	grpc_completion_queue_shutdown(s->cq);
	while (grpc_completion_queue_pluck(s->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
	               .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(s->cq);
	grpc_metadata_array_destroy(&s->trailing);
	grpc_metadata_array_destroy(&s->initial);
	grpc_slice_unref(s->details);
}
