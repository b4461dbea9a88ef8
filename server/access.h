/*
 * access.h - who may call what, and what gets audited.
 *
 * One table (access.c) gives every RPC its permission and its audit class; an RPC missing from it
 * is refused (default deny), and a test fails. Callers present `authorization: Bearer <token>`;
 * tokens are looked up by their keyed hash and compared in constant time.
 *
 *   ADMIN   everything except ResolveSecrets
 *   EDITOR  in its project: read, write, reveal masked values, merge
 *   VIEWER  in its project: metadata only
 *   RUNTIME ResolveSecrets only, in its project and listed environments and versions (none: all)
 *
 * Only runtime tokens ever receive restricted values: nobody else may call ResolveSecrets.
 */
#ifndef COFFER_ACCESS_H
#define COFFER_ACCESS_H

#include <stdbool.h>

#include "rpc.h"
#include "store.h"

enum access_role { ROLE_ADMIN = 1, ROLE_EDITOR = 2, ROLE_VIEWER = 3, ROLE_RUNTIME = 4 };

/* rpc_server_opts.authorize: authenticates, checks the permission, prepares the call's audit row.
 */
int access_authorize(struct rpc_ctx *ctx, const coffer_method_desc *m, const ProtobufCMessage *req);
/* rpc_server_opts.before_finish: writes the audit row the call needs before it is answered;
 * answers UNAVAILABLE instead when that fails (fail closed). */
int access_before_finish(struct rpc_ctx *ctx, int code);
/* The audit row a write method's transaction must carry, or NULL for other methods. */
const struct store_audit *access_write_audit(struct rpc_ctx *ctx);
/* Records the revision a call read or wrote, for its audit row. */
void access_note_revision(struct rpc_ctx *ctx, int64_t revision);
/* Whether the permission table lists the method. */
bool access_has_policy(const char *path);
/* "admin", "editor", ... */
const char *access_role_name(int role);

#endif
