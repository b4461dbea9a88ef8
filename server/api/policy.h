/*
 * policy.h - who may call what, and what gets audited: one table for every RPC.
 *
 * A method of a bound service missing from the table does not compile (policy.c); a method of
 * any other service is refused (default deny). Callers present
 * `authorization: Bearer <token>`; the domain authenticates it (tokens.h).
 *
 *   ADMIN   everything except ResolveSecrets
 *   EDITOR  in its project: read, write, reveal masked values, merge
 *   VIEWER  in its project: metadata only
 *   RUNTIME ResolveSecrets and WatchSecrets only, in its project and listed environments and
 *           versions (none: all)
 *   any valid token: WhoAmI
 *
 * Only runtime tokens ever receive restricted values: nobody else may call ResolveSecrets.
 */
#ifndef COFFER_POLICY_H
#define COFFER_POLICY_H

#include <stdbool.h>

#include "call.h"

enum perm {
	P_PUBLIC,  /* no token needed: health, reflection (schema only) */
	P_ADMIN,   /* admin tokens */
	P_READ,    /* admin; editor or viewer of the project */
	P_WRITE,   /* admin; editor of the project */
	P_REVEAL,  /* admin; editor of the project (restricted values never: see RevealSecret) */
	P_RESOLVE, /* runtime tokens of the project, environment and version */
	P_WATCH,   /* the same, and admin, editors and viewers of the project (no value is sent) */
	P_ANY,     /* any valid token (WhoAmI) */
};

enum audit_class {
	A_NONE,   /* reads: refused calls only */
	A_WRITE,  /* writes: in the write's transaction; a call that wrote nothing gets a row too */
	A_RECORD, /* reveals, resolves, token operations: a row before the answer leaves */
};

struct policy {
	enum perm perm;         /* who may call it */
	enum audit_class audit; /* how it is audited */
	const char *project;    /* request field naming the project, or NULL */
	bool inline_ok;         /* its handler may run on the gRPC thread, from memory (run.c) */
};

/* The policy of a method of a service the server binds (its generated method table's entry), or
 * NULL (refused). */
const struct policy *policy_of(const coffer_method_desc *m);
/* Authenticates the caller, applies the rate limit and checks the permission and scope; fills
 * the call's audit row from the request (NULL for streams). RPC_OK or the code to answer. */
int policy_authorize(struct call *c, const ProtobufCMessage *req);
/* The audit row a write carries into its transaction, or NULL when the call is not a write
 * audited that way. */
struct audit_row *policy_write_audit(struct call *c);
/* Before the answer leaves: whether the call still needs its audit row (c->audit, its code set)
 * recorded, which must then succeed before the answer (fail closed). A refusal without a valid
 * token is counted here instead. */
bool policy_audit(struct call *c, int code);

#endif
