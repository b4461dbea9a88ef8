/*
 * audit.h - the audit row, and the writer that group-commits rows for reveals, resolves, token
 * operations and refused calls.
 *
 * Callers queue a row with a function to call once it is committed; a writer thread hands
 * everything queued so far to the sink in one batch (the daemon wires the sink to one database
 * transaction: group commit), so many resolves share one commit, none is answered before its row
 * is stored, and no thread waits for it but the writer. If rows cannot be written the callers
 * hear COF_EUNAVAIL and answer UNAVAILABLE: fail closed. Writes carry their row into their own
 * transaction instead (store_tx).
 */
#ifndef COFFER_AUDIT_H
#define COFFER_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer_limits.h"
#include "errors.h"

/* One audit row. Never a value or a token secret. */
struct audit_row {
	int64_t id;                       /* audit_events.id (lists) */
	int64_t time_us;                  /* when (lists) */
	char token_id[32];                /* who */
	char method[96];                  /* full method path */
	char project[LIMIT_NAME_BUF];     /* request fields, when the request has them */
	char environment[LIMIT_NAME_BUF]; /* environment (or merge source) */
	char secret[LIMIT_NAME_BUF];      /* secret name */
	int version;                      /* enum version of the request, 0 when none */
	int code;                         /* gRPC status */
	char peer[64];                    /* transport peer */
	char transport[12];               /* what carried the call: "grpc", "connect", "http" */
	int64_t revision;                 /* the revision read or written, 0 otherwise */
	int64_t count;                    /* calls it stands for (audit_count); 0 or 1: one */
	bool committed;                   /* set by store_tx: stored with a write's transaction */
};

/* Stores rows[0..n) durably (all or none); 0 or a COF_E* code. */
typedef int (*audit_sink_fn)(void *arg, const struct audit_row *rows, size_t n, struct cof_err *e);

struct audit;

/* Called by the writer when it has had nothing to write for a second (and then every second),
 * outside its lock: the daemon probes a database that stopped confirming commits. */
typedef void (*audit_idle_fn)(void *arg);

struct audit_opts {
	audit_sink_fn sink; /* stores a batch */
	audit_idle_fn idle; /* NULL: none */
	void *arg;          /* both functions' argument */
	int max_backlog;    /* rows that may wait at once; more: refused (0: 100,000) */
};

/* Starts the writer thread; every batch goes to opts->sink. */
int audit_start(const struct audit_opts *opts, struct audit **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Stops the writer after committing what is queued. NULL-safe. */
void audit_stop(struct audit *a);
/* Called once a row is stored (status 0) or cannot be (COF_EUNAVAIL); on the writer's thread. */
typedef void (*audit_done_fn)(void *arg, int status);
/* Whose rows: a batch holds every queued call's row and only a few streams' rows beside them, so
 * that an answer never waits for the commit of a burst of stream openings. */
enum audit_lane {
	AUDIT_CALLS,   /* a client waits for the answer the row precedes */
	AUDIT_STREAMS, /* the opening of a stream: its first message may wait its turn */
	AUDIT_LANES,
};
/* Queues a copy of row in lane; done(arg, status) (NULL: none) follows the batch's commit. 0, or
 * COF_EUNAVAIL at once (done is not called) when the writer is stopping or max_backlog rows already
 * wait: the caller refuses its call rather than answer without its row. */
int audit_submit(struct audit *a, enum audit_lane lane, const struct audit_row *row,
                 audit_done_fn done, void *arg) __attribute__((warn_unused_result));
/* Counts a refused call without waiting: calls with the same (peer, method, code, project) are
 * written as one row whose count says how many, within a few seconds. For calls refused before any
 * token was accepted, so that a flood of them costs one row, not one row each. */
void audit_count(struct audit *a, const struct audit_row *row);
/* Rows waiting to be written. */
int audit_backlog(struct audit *a);

#endif
