/*
 * call.h - struct call: the one owner of everything about one request, from dispatch to answer.
 *
 * It is made zeroed by the entry (api_unary, api_stream; run.c) and freed when the call is
 * answered. It holds the transport call (arena, metadata, deadline), the access decision (policy
 * and caller), the audit row, and the database session, opened on first use and closed before
 * anything waits. Handlers validate their request, call the domain with call_session(), and map
 * its errors with call_error(); they build the response in the call's arena (call_alloc). One
 * handler file per service; handlers never see the store.
 *
 * Where a call runs (run.c): first on the gRPC thread that received it, from memory only. The
 * first handler that needs the database there (call_session) gets NULL, and the call runs again
 * from the start on a database thread, with a connection. A handler may also park the call until
 * its project reaches a revision (call_wait_revision). No thread waits for a client, the
 * database, an audit commit or a revision while holding a call.
 */
#ifndef COFFER_CALL_H
#define COFFER_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "errors.h"
#include "model.h"
#include "rpc.h"
#include "session.h"
#include "state.h"
#include "waits.h"

#include "coffer/console/v1/sessions.rpc.h"
#include "coffer/v1/access.rpc.h"
#include "coffer/v1/environments.rpc.h"
#include "coffer/v1/projects.rpc.h"
#include "coffer/v1/secrets.rpc.h"
#include "grpc/health/v1/health.rpc.h"
#include "grpc/reflection/v1alpha/reflection.rpc.h"

struct policy;

/* Where a call runs now (run.c). */
enum call_mode {
	CALL_INLINE, /* on the gRPC thread that received it: memory only, answer by returning */
	CALL_DB,     /* on a database thread: call_session connects */
	CALL_ASYNC,  /* woken elsewhere (the audit writer, a wait): answer with rpc_complete */
};

struct call {
	struct api *api;                  /* process-wide state */
	struct rpc_ctx *rpc;              /* the transport call: arena, metadata, peer, deadline */
	const coffer_method_desc *method; /* what is called */
	const struct policy *policy;      /* who may call it and how it is audited; NULL: refused */
	struct token caller;              /* the authenticated token */
	bool authenticated;               /* caller is known (or authentication is off) */
	int64_t session_end_us;           /* by a console session: when it ends; 0: by a token */
	bool tokenless;                   /* refused before any token was accepted */
	char address[64];                 /* the peer without its port */
	struct audit_row audit;           /* the call's audit row */
	struct session db;                /* the database session; db.store NULL until opened */
	/* how it runs (run.c) */
	enum call_mode mode;         /* where it runs now */
	const void *handlers;        /* the service's handler table */
	const ProtobufCMessage *req; /* unary: the request */
	ProtobufCMessage *resp;      /* unary: the response (the rpc arena) */
	struct rpc_stream *stream;   /* streams: the stream */
	bool would_block;            /* a handler needed the database in CALL_INLINE */
	bool authorized;             /* policy_authorize passed (it is not run again) */
	bool rate_taken;             /* the token's rate limit was charged */
	bool audited;                /* its row is written already (a stream's opening) */
	int code;                    /* the code waiting for its audit row */
	/* a wait for a revision */
	bool wait_asked;          /* the handler asked to park */
	int64_t wait_project_id;  /* for this project */
	int64_t wait_revision;    /* to reach this revision */
	int64_t wait_deadline_ms; /* monotonic; set by the first park */
	struct wait wait;         /* the node while parked */
};

/* A new call (zeroed, then method and peer set); NULL on OOM. */
struct call *call_new(struct api *api, struct rpc_ctx *rpc, const coffer_method_desc *m);
/* Closes the session and frees the call. NULL-safe. */
void call_free(struct call *c);

/* The call's database session, opened on first use with the call's deadline (or the default
 * statement timeout), with the keyring refreshed when due; NULL with e set when the database
 * cannot be reached. In CALL_INLINE: NULL with COF_EWOULDBLOCK (the call runs again where it can
 * connect; call_error passes that on). */
struct session *call_session(struct call *c, struct cof_err *e);
/* A session that serves from memory where the call runs inline (the cache: ResolveSecrets and
 * authentication), else call_session. A domain operation that needs more fails with
 * COF_EWOULDBLOCK. */
struct session *call_memory_session(struct call *c, struct cof_err *e);
/* What a handler returns to park its call (call_wait_revision). */
#define CALL_PARK (-2)
/* Parks the call until project_id reaches revision, for at most max_wait_ms from the first time
 * it parks: returns CALL_PARK for the handler to return, or RPC_OK when its time is up (the
 * handler answers). A handler that hands its call over (a stream) returns RPC_PENDING and does
 * not touch it again. */
int call_wait_revision(struct call *c, int64_t project_id, int64_t revision, int64_t max_wait_ms);
/* Logs e's detail (never a value) and returns its gRPC code with e's message. */
int call_error(struct call *c, const struct cof_err *e);
/* Sets the status message sent with code; returns code. */
int call_fail(struct call *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Records the revision a call read or wrote, for its audit row. */
void call_note_revision(struct call *c, int64_t revision);
/* Milliseconds before the call's deadline; -1 when the client set none. */
int64_t call_remaining_ms(const struct call *c);

/* Zeroed memory owned by the call; NULL only on OOM. */
void *call_alloc(struct call *c, size_t n);
/* An arena copy of s (NULL stays NULL). */
char *call_strdup(struct call *c, const char *s);
/* A Timestamp in the call's arena from microseconds since the epoch. */
Google__Protobuf__Timestamp *call_timestamp(struct call *c, int64_t us);

/* Request checks: RPC_OK, or an INVALID_ARGUMENT message set and its code. call_check_project
 * also records the project for the call log. */
int call_check_project(struct call *c, const char *name);
int call_check_environment(struct call *c, const char *field, const char *name);
int call_check_secret(struct call *c, const char *name);
int call_check_value(struct call *c, const char *value);
int call_check_description(struct call *c, const char *description);
/* VERSION_DRAFT or VERSION_LIVE; unspecified too when allow_unspecified. */
int call_check_version(struct call *c, int version, bool allow_unspecified);
/* A revision field (expected_*, min/at/known): not negative. */
int call_check_revision(struct call *c, const char *field, int64_t revision);

/* ---- pages ---- */

struct page {
	char after[2 * LIMIT_NAME_BUF + 8]; /* the key the page starts after ("" first page) */
	int limit;                          /* rows to show */
};

/* Fills one response message from one row. */
typedef void (*page_fill_fn)(struct call *c, void *msg, const void *row);
/* Writes the key a page continues after into buf. */
typedef void (*page_key_fn)(const void *row, char *buf, size_t cap);

/* Decodes page_token and page_size; an rpc code on bad input. List p->limit + 1 rows to learn
 * whether another page follows. */
int call_page_begin(struct call *c, const char *token, int32_t size, struct page *p);
/* The response list of a page: up to p->limit messages of type desc from rows[0..n) (row_size
 * bytes each), each filled by fill; *next_token continues after key(last shown row) when more
 * follow, else stays as it is. */
int call_page_end(struct call *c, const struct page *p, const void *rows, size_t row_size, int n,
                  const ProtobufCMessageDescriptor *desc, page_fill_fn fill, page_key_fn key,
                  void *items, size_t *n_items, char **next_token);

/* The request metadata that carries a console session's secret: the HTTP listener's Connect
 * adapter sets it from the session cookie (connect.c), and only calls carried by Connect are
 * authenticated by it. */
#define CALL_SESSION_KEY "coffer-session"
/* The transport that carries console sessions. */
#define CALL_CONNECT_TRANSPORT "connect"

/* A token as the API shows it (never its secret), in the call's memory (svc_access.c). */
void call_token_message(struct call *c, Coffer__V1__Token *out, const struct token *t);

/* The services' handler tables (one file each). */
extern const Coffer__V1__Projects__Handlers projects_handlers;
extern const Coffer__V1__Secrets__Handlers secrets_handlers;
extern const Coffer__V1__Environments__Handlers environments_handlers;
extern const Coffer__V1__Access__Handlers access_handlers;
extern const Coffer__Console__V1__Sessions__Handlers sessions_handlers;
extern const Grpc__Health__V1__Health__Handlers health_handlers;
extern const Grpc__Reflection__V1alpha__ServerReflection__Handlers reflection_handlers;

#endif
