/*
 * helpers.h - what the integration test files share: the in-process server, a channel, libpq for
 * playing attacker or operator, and small wrappers over the generated stubs.
 */
#ifndef COFFER_TEST_HELPERS_H
#define COFFER_TEST_HELPERS_H

#include <check.h>
#include <grpc/grpc.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>

#include "coffer/client.h"
#include "coffer_client_internal.h"
#include "coffer/v1/projects.rpc.h"
#include "grpc/health/v1/health.stub.h"
#include "server.h"

extern struct settings cfg;
/* The main in-process server. */
extern struct server *srv;
extern char target[64];
extern coffer_channel *ch;
extern PGconn *admin;

/* A unique name with the prefix (per process). */
const char *uniq(const char *prefix);
coffer_channel *channel(int timeout_ms);
void create_project(const char *name);
int64_t project_revision(const char *name);
int create_secret(const char *project, const char *name, const char *value, int vis,
                  coffer_error *err);
void must_create_secret(const char *project, const char *name, const char *value, int vis);
/* The folder of the test certificates (tests/tls/make-certs.sh: ca.crt, server.*, client.*,
 * stranger.*), made on first use. */
const char *test_certs(void);
/* Serves c over TLS with the test server certificate; with mtls, clients need one from its CA. */
void with_tls(struct settings *c, bool mtls);
/* Creates n secrets LARGE_00... of 60,000 bytes each in project, through c. */
void large_secrets(coffer_channel *c, const char *project, int n);
int reveal(coffer_channel *c, const char *project, const char *name, char **value,
           coffer_error *err);
char *must_reveal(const char *project, const char *name);
Coffer__V1__Secret *get_secret(const char *project, const char *name);
PGresult *sql(const char *q, int n, const char *const *vals);
char *value_row_id(const char *project, const char *name);
/* GET path from 127.0.0.1:port; the whole HTTP response (malloc'd). Fails the test when the
 * listener does not answer within 15 s. */
char *http_get(int port, const char *path);
/* The same with a bearer token (NULL: none). */
char *http_get_as(int port, const char *path, const char *token);
/* The value of the /metrics line that starts with prefix (0 when there is none). */
long long metric_value(int port, const char *prefix);
/* A counter's value once it has reached want (or after 5 s), read again a moment later. A call
 * is counted once its status has gone out, so the client may hear the answer first. */
long long metric_settled(int port, const char *prefix, long long want);
/* Makes the audit log refuse every row, and mends it (safe to call when it is not broken). Tests
 * that break it register audit_log_mend as a checked teardown, so a failure cannot leave it
 * broken for the tests after. */
void audit_log_break(void);
void audit_log_mend(void);

/* A reflection stream that sends nothing (an idle client); its final status when it ends. */
struct open_stream {
	grpc_call *call;              /* the call */
	grpc_completion_queue *cq;    /* its queue */
	grpc_metadata_array trailing; /* its trailers */
	grpc_status_code status;      /* final status */
	grpc_slice details;           /* final message */
	grpc_metadata_array initial;  /* initial metadata */
	bool ended;                   /* the status arrived */
};
void stream_open(grpc_channel *c, struct open_stream *s);
/* Waits up to ms for the stream to end; whether it did. */
bool stream_ended(struct open_stream *s, int ms);
/* Cancels (if needed) and frees. */
void stream_close(struct open_stream *s);

/* A server with authentication on (the tests' admin token works on it), from settings c changed
 * by the caller; its address into addr. */
struct server *start_replica(struct settings *c, char *addr, size_t cap);
/* A channel to addr with token (NULL: none). */
coffer_channel *to(const char *addr, const char *token, int timeout_ms);
/* Through addr, as admin: project p with secret S = value; a runtime token of p (secret, 128
 * bytes, and id, 32); S set to value (the revision written). */
void project_with(const char *addr, const char *p, const char *value);
void runtime_token(const char *addr, const char *p, char *secret, char *id);
/* A token of project p through addr: role, one environment (NULL: any), one version (0: any);
 * its secret (128 bytes) and id (32 bytes; id may be NULL). */
void token_for(const char *addr, const char *p, int role, const char *env, int version,
               char *secret, char *id);
int64_t write_s(const char *addr, const char *p, const char *value);
/* Health/Check of addr (no token): 1 SERVING, 2 NOT_SERVING, -1 no answer. */
int health_of(const char *addr);
/* Resolves p's main/live through addr with token (min_revision 0: none): the code; S's value into
 * value (64 bytes; NULL: not wanted), the revision read into *revision (NULL: not wanted). */
int resolve_as(const char *addr, const char *token, const char *p, int64_t min_revision,
               char *value, int64_t *revision);
/* p's main/live through addr with token, every name (n 0) or names; fails the test unless OK. */
Coffer__V1__ResolveSecretsResponse *must_resolve_names(const char *addr, const char *token,
                                                       const char *p, char **names, size_t n,
                                                       int64_t min_revision);

/* A TCP relay between a cofferd (or a store) and PostgreSQL that can cut every connection at
 * once, as a network failure would (a reset, no goodbye), and refuse new ones meanwhile. */
struct relay {
	int listen_fd;         /* accepting */
	int port;              /* its port */
	int upstream_port;     /* PostgreSQL's */
	int pipe_fd[2];        /* wakes the thread */
	pthread_t thread;      /* forwards */
	atomic_bool cut, stop; /* requests */
	atomic_bool refuse;    /* new connections are reset at once */
	atomic_bool frozen;    /* nothing is accepted or forwarded: a server that hangs */
	int fds[32];           /* client, server, client, server, ... */
	int n;                 /* entries in fds */
};
/* Starts relaying to the tests' PostgreSQL. */
void relay_start(struct relay *r);
/* The tests' database URL through the relay. */
void relay_url(const struct relay *r, char *url, size_t cap);
/* Resets every connection now; with refuse, every new one too until relay_allow. */
void relay_cut(struct relay *r, bool refuse);
/* New connections go through again. */
void relay_allow(struct relay *r);
/* Stops (true) or resumes (false) accepting and forwarding, without closing anything: the
 * database hangs (a frozen VM, a partition), and comes back. */
void relay_freeze(struct relay *r, bool frozen);
/* Wakes the relay's thread (after setting cut or refuse). */
void relay_poke(struct relay *r);
void relay_stop(struct relay *r);

/* Environments and overrides (versions 1 draft, 2 live). */
void env_create(const char *project, const char *name);
int64_t env_revision(const char *project, const char *name);
int set_override(const char *project, const char *env, int version, const char *secret,
                 const char *value, int64_t expected, coffer_error *err);
int delete_override(const char *project, const char *env, int version, const char *secret,
                    int64_t expected, coffer_error *err);
/* The override's revision, 0 when there is none. */
int64_t override_revision(const char *project, const char *env, int version, const char *secret);
/* Counts the overrides of env (version 0: both), paging page_size at a time. */
int count_overrides(const char *project, const char *env, int version, int page_size);
void update_value(const char *project, const char *name, const char *value);
int merge(const char *project, const char *source, const char *into, bool dry_run,
          int64_t expected_source, int64_t expected_target, bool delete_source,
          Coffer__V1__MergeEnvironmentResponse **out, coffer_error *err);

/* A resolve's response, with lookups by name. */
struct resolved {
	Coffer__V1__ResolveSecretsResponse *resp; /* the response */
};
/* Resolves (at revision `at`, 0: now) and fails the test unless it succeeds. */
void resolve_into(const char *project, const char *env, int version, int64_t at,
                  struct resolved *r);
/* The status code of a resolve. */
int resolve_code(const char *project, const char *env, int version, int64_t at);
/* The value (NULL when absent) and source (0 when absent) of a secret in r. */
const char *resolved_value(const struct resolved *r, const char *name);
int resolved_source(const struct resolved *r, const char *name);
void resolved_clear(struct resolved *r);

/* Runs a typed call and checks its status code; resp_ and err_ are in scope for the call. */
#define EXPECT_CODE(call, want)                                                                    \
	do {                                                                                       \
		coffer_error err_ = {0};                                                           \
		ProtobufCMessage *resp_ = NULL;                                                    \
		int rc_ = (call);                                                                  \
		if (resp_)                                                                         \
			protobuf_c_message_free_unpacked(resp_, NULL);                             \
		ck_assert_msg(err_.code == (want), "%s: got %s (%s), want %s", #call,              \
		              coffer_code_name(err_.code), err_.message, coffer_code_name(want));  \
		ck_assert_int_eq(rc_ != 0, (want) != 0);                                           \
	} while (0)

/* Stops the authenticating server test_access.c started (main.c, at the end). */
void access_tests_cleanup(void);
/* The admin token of the database the tests share (test_access.c makes it). */
const char *access_admin_token(void);

#endif
