/* access.c - the permission table, authentication and audit decisions (see access.h). */
#include "access.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <string.h>

#include "audit.h"
#include "handlers.h"
#include "log.h"
#include "metrics.h"
#include "status.h"

enum perm {
	P_PUBLIC,  /* no token needed: health, reflection (schema only) */
	P_ADMIN,   /* admin tokens */
	P_READ,    /* admin; editor or viewer of the project */
	P_WRITE,   /* admin; editor of the project */
	P_REVEAL,  /* admin; editor of the project (restricted values never: see RevealSecret) */
	P_RESOLVE, /* runtime tokens of the project, environment and version */
};

enum audit_class {
	A_NONE,   /* reads: refused calls only */
	A_WRITE,  /* writes: in the write's transaction; a call that wrote nothing gets a row too */
	A_RECORD, /* reveals, resolves, token operations: a row before the answer leaves */
};

struct policy {
	const char *path; /* full method path */
	enum perm perm;   /* who may call it */
	enum audit_class audit;
	const char *project; /* request field naming the project, or NULL */
};

static const struct policy policies[] = {
        {"/coffer.v1.Projects/CreateProject", P_ADMIN, A_WRITE, "name"},
        {"/coffer.v1.Projects/GetProject", P_READ, A_NONE, "name"},
        {"/coffer.v1.Projects/ListProjects", P_ADMIN, A_NONE, NULL},
        {"/coffer.v1.Projects/DeleteProject", P_ADMIN, A_WRITE, "name"},
        {"/coffer.v1.Secrets/CreateSecret", P_WRITE, A_WRITE, "project"},
        {"/coffer.v1.Secrets/GetSecret", P_READ, A_NONE, "project"},
        {"/coffer.v1.Secrets/ListSecrets", P_READ, A_NONE, "project"},
        {"/coffer.v1.Secrets/UpdateSecret", P_WRITE, A_WRITE, "project"},
        {"/coffer.v1.Secrets/DeleteSecret", P_WRITE, A_WRITE, "project"},
        {"/coffer.v1.Secrets/RevealSecret", P_REVEAL, A_RECORD, "project"},
        {"/coffer.v1.Secrets/ResolveSecrets", P_RESOLVE, A_RECORD, "project"},
        {"/coffer.v1.Environments/CreateEnvironment", P_WRITE, A_WRITE, "project"},
        {"/coffer.v1.Environments/GetEnvironment", P_READ, A_NONE, "project"},
        {"/coffer.v1.Environments/ListEnvironments", P_READ, A_NONE, "project"},
        {"/coffer.v1.Environments/DeleteEnvironment", P_WRITE, A_WRITE, "project"},
        {"/coffer.v1.Environments/SetOverride", P_WRITE, A_WRITE, "project"},
        {"/coffer.v1.Environments/DeleteOverride", P_WRITE, A_WRITE, "project"},
        {"/coffer.v1.Environments/ListOverrides", P_READ, A_NONE, "project"},
        {"/coffer.v1.Environments/MergeEnvironment", P_WRITE, A_WRITE, "project"},
        {"/coffer.v1.Access/CreateToken", P_ADMIN, A_RECORD, "project"},
        {"/coffer.v1.Access/ListTokens", P_ADMIN, A_RECORD, "project"},
        {"/coffer.v1.Access/RevokeToken", P_ADMIN, A_RECORD, NULL},
        {"/coffer.v1.Access/ListAuditEvents", P_ADMIN, A_NONE, "project"},
        {"/grpc.health.v1.Health/Check", P_PUBLIC, A_NONE, NULL},
        {"/grpc.health.v1.Health/Watch", P_PUBLIC, A_NONE, NULL},
        {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", P_PUBLIC, A_NONE, NULL},
};

/* What a call carries from authorization to its answer. */
struct access_call {
	const struct policy *policy; /* NULL: no policy (refused) */
	struct store_audit ev;       /* the call's audit row */
	struct store_token token;    /* the caller */
	bool authenticated;          /* token checked (or auth disabled) */
};

static const struct policy *policy_of(const char *path)
{
	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
		if (strcmp(policies[i].path, path) == 0)
			return &policies[i];
	return NULL;
}

bool access_has_policy(const char *path)
{
	return policy_of(path) != NULL;
}

const char *access_role_name(int role)
{
	static const char *const names[] = {"none", "admin", "editor", "viewer", "runtime"};
	return role >= 1 && role <= 4 ? names[role] : names[0];
}

/* A string field of the request by name, or "" when it has none. */
static const char *str_field(const ProtobufCMessage *req, const char *name)
{
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field_by_name(req->descriptor, name);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		return "";
	const char *v = *(const char *const *)((const char *)req + f->offset);
	return v ? v : "";
}

static int enum_field(const ProtobufCMessage *req, const char *name)
{
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field_by_name(req->descriptor, name);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_ENUM || f->label == PROTOBUF_C_LABEL_REPEATED)
		return 0;
	return *(const int *)((const char *)req + f->offset);
}

static struct access_call *call_of(struct rpc_ctx *ctx)
{
	struct access_call *c = rpc_call_data(ctx);
	if (c == NULL) {
		c = rpc_alloc(ctx, sizeof(*c));
		if (c == NULL)
			return NULL;
		snprintf(c->ev.method, sizeof(c->ev.method), "%s", rpc_method(ctx));
		snprintf(c->ev.peer, sizeof(c->ev.peer), "%s", rpc_peer(ctx));
		rpc_set_call_data(ctx, c);
	}
	return c;
}

/* Fills the audit row's fields from whatever the request names. */
static void describe(struct access_call *c, const coffer_method_desc *m,
                     const ProtobufCMessage *req)
{
	const char *project =
	        c->policy && c->policy->project ? str_field(req, c->policy->project) : "";
	const char *env = str_field(req, "environment");
	if (*env == '\0')
		env = str_field(req, "source");
	const char *secret = str_field(req, "secret");
	if (*secret == '\0' && strstr(m->path, "/coffer.v1.Secrets/"))
		secret = str_field(req, "name");
	if (*env == '\0' && strstr(m->path, "/coffer.v1.Environments/"))
		env = str_field(req, "name");
	snprintf(c->ev.project, sizeof(c->ev.project), "%s", project);
	snprintf(c->ev.environment, sizeof(c->ev.environment), "%s", env);
	snprintf(c->ev.secret, sizeof(c->ev.secret), "%s", secret);
	c->ev.version = enum_field(req, "version");
}

/* ---- rate limit: a token bucket per token id, per replica ---- */

#define BUCKETS 4096

static struct bucket {
	char id[32];  /* token id; "" when free */
	double level; /* calls available */
	double last;  /* monotonic seconds of the last refill */
} buckets[BUCKETS];
static pthread_mutex_t buckets_mu = PTHREAD_MUTEX_INITIALIZER;

/* Takes one call from the token's bucket; false when it is empty. A slot reused by another
 * token (a hash collision) starts full: the limit is approximate, never stricter than set. */
static bool take_call(const char *id, int rate, int burst)
{
	unsigned h = 5381;
	for (const char *p = id; *p; p++)
		h = h * 33 + (unsigned char)*p;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double t = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	double cap = burst > 0 ? burst : 2.0 * rate;
	pthread_mutex_lock(&buckets_mu);
	struct bucket *b = &buckets[h % BUCKETS];
	if (strcmp(b->id, id) != 0) {
		snprintf(b->id, sizeof(b->id), "%s", id);
		b->level = cap;
		b->last = t;
	}
	b->level += (t - b->last) * rate;
	if (b->level > cap)
		b->level = cap;
	b->last = t;
	bool ok = b->level >= 1.0;
	if (ok)
		b->level -= 1.0;
	pthread_mutex_unlock(&buckets_mu);
	return ok;
}

/* Looks up the bearer token; 0 and c->token filled, or an rpc code. */
static int authenticate(struct rpc_ctx *ctx, struct access_call *c)
{
	const char *header = rpc_metadata(ctx, "authorization");
	if (header == NULL || strncmp(header, "Bearer ", 7) != 0)
		return rpc_fail(ctx, RPC_UNAUTHENTICATED, "a bearer token is required");
	const char *token = header + 7;
	if (!crypt_token_well_formed(token))
		return rpc_fail(ctx, RPC_UNAUTHENTICATED, "the token is not valid");
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES], stored[CRYPT_TOKEN_HASH_BYTES];
	struct cof_err e = {0};
	if (crypt_token_hash(handler_app(ctx)->keyring, token, hash, &e) != 0)
		return handler_error(ctx, &e);
	struct store *s = handler_store(ctx, &e);
	if (s == NULL)
		return handler_error(ctx, &e);
	int rc = store_token_by_hash(s, hash, sizeof(hash), &c->token, stored, &e);
	if (rc == COF_ENOTFOUND ||
	    (rc == 0 && (!crypt_equal(hash, stored, sizeof(hash)) || !c->token.usable)))
		return rpc_fail(ctx, RPC_UNAUTHENTICATED,
		                "the token is not valid, revoked or expired");
	if (rc)
		return handler_error(ctx, &e);
	snprintf(c->ev.token_id, sizeof(c->ev.token_id), "%s", c->token.id);
	return RPC_OK;
}

static bool in_scope(const struct access_call *c, const ProtobufCMessage *req)
{
	const struct store_token *t = &c->token;
	const struct policy *p = c->policy;
	if (p->perm == P_PUBLIC)
		return true;
	if (p->perm == P_RESOLVE) {
		if (t->role != ROLE_RUNTIME || strcmp(t->project, c->ev.project) != 0)
			return false;
		bool env_ok = t->n_envs == 0;
		for (int i = 0; i < t->n_envs && !env_ok; i++)
			env_ok = strcmp(t->envs[i], str_field(req, "environment")) == 0;
		int v = enum_field(req, "version");
		return env_ok && (t->versions == 0 || (v >= 1 && v <= 2 && (t->versions & v)));
	}
	if (t->role == ROLE_ADMIN)
		return true;
	bool own = strcmp(t->project, c->ev.project) == 0;
	switch (p->perm) {
	case P_READ:
		return own && (t->role == ROLE_EDITOR || t->role == ROLE_VIEWER);
	case P_WRITE:
	case P_REVEAL:
		return own && t->role == ROLE_EDITOR;
	default:
		return false;
	}
}

int access_authorize(struct rpc_ctx *ctx, const coffer_method_desc *m, const ProtobufCMessage *req)
{
	struct access_call *c = call_of(ctx);
	if (c == NULL)
		return rpc_fail(ctx, RPC_RESOURCE_EXHAUSTED, "out of memory");
	c->policy = policy_of(m->path);
	describe(c, m, req);
	if (c->policy == NULL) {
		log_error("no permission is declared for %s: refused", m->path);
		return rpc_fail(ctx, RPC_PERMISSION_DENIED, "%s is not permitted", m->path);
	}
	if (c->policy->perm == P_PUBLIC)
		return RPC_OK;
	if (handler_app(ctx)->insecure_no_auth) {
		c->authenticated = true;
		snprintf(c->ev.token_id, sizeof(c->ev.token_id), "insecure-no-auth");
		return RPC_OK;
	}
	int code = authenticate(ctx, c);
	if (code)
		return code;
	c->authenticated = true;
	const struct config *cfg = handler_app(ctx)->cfg;
	if (cfg->rate_limit > 0 && !take_call(c->token.id, cfg->rate_limit, cfg->rate_burst))
		return rpc_fail(
		        ctx, RPC_RESOURCE_EXHAUSTED,
		        "token %s is over its rate limit of %d calls per second; retry later",
		        c->token.id, cfg->rate_limit);
	if (!in_scope(c, req))
		return rpc_fail(ctx, RPC_PERMISSION_DENIED,
		                "token %s (%s%s%s) may not call %s%s%s%s", c->token.id,
		                access_role_name(c->token.role), *c->token.project ? " of " : "",
		                c->token.project, m->name, *c->ev.project ? " in project \"" : "",
		                c->ev.project, *c->ev.project ? "\"" : "");
	return RPC_OK;
}

const struct store_audit *access_write_audit(struct rpc_ctx *ctx)
{
	struct access_call *c = rpc_call_data(ctx);
	if (c == NULL || c->policy == NULL || c->policy->audit != A_WRITE || !c->authenticated)
		return NULL;
	return &c->ev;
}

void access_note_revision(struct rpc_ctx *ctx, int64_t revision)
{
	struct access_call *c = rpc_call_data(ctx);
	if (c)
		c->ev.revision = revision;
}

/* Enough time for a batch, but bounded so that a stuck audit log answers UNAVAILABLE. */
#define AUDIT_WAIT_MS 5000

int access_before_finish(struct rpc_ctx *ctx, int code)
{
	struct access_call *c = call_of(ctx);
	if (c == NULL)
		return code;
	const struct policy *p = c->policy;
	if (p && p->perm == P_PUBLIC)
		return code;
	bool needed;
	if (code != RPC_OK) {
		needed = true; /* every refused or failed call */
	} else if (p == NULL || p->audit == A_NONE) {
		needed = false;
	} else if (p->audit == A_WRITE) {
		struct worker_state *w = rpc_worker_state(ctx);
		needed = !(w && w->store && store_audit_committed(w->store));
	} else {
		needed = true;
	}
	if (!needed)
		return code;
	c->ev.code = code;
	int rc = audit_record(handler_app(ctx)->audit, &c->ev, AUDIT_WAIT_MS);
	if (rc != 0)
		metrics_audit_failure(handler_app(ctx)->metrics);
	if (rc == 0 || code != RPC_OK)
		return code;
	return rpc_fail(ctx, RPC_UNAVAILABLE, "the audit log is unavailable");
}
