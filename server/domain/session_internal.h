/*
 * session_internal.h - what the domain's own files do with a session: transactions on its
 * connection. Outside the domain a session is only opened and closed (session.h), since the store's
 * types are not theirs to see.
 */
#ifndef COFFER_SESSION_INTERNAL_H
#define COFFER_SESSION_INTERNAL_H

#include "session.h"
#include "store.h"

/* store_tx on the session's connection; after a commit, this replica's cache forgets what the
 * transaction changed before the answer leaves (every replica also hears of it). */
int session_tx(struct session *ss, enum store_tx_mode mode, store_tx_fn fn, void *arg,
               struct audit_row *audit, struct cof_err *e) __attribute__((warn_unused_result));

#endif
