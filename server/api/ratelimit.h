/*
 * ratelimit.h - rate limits on this replica: a token bucket per token id (calls), or per peer
 * address (calls without a valid token).
 *
 * A bucket holds `burst` calls and refills at `rate` per second. Buckets live in a fixed table
 * indexed by a hash of the id; a slot reused by another token starts full, so the limit is
 * approximate and never stricter than set.
 */
#ifndef COFFER_RATELIMIT_H
#define COFFER_RATELIMIT_H

#include <stdbool.h>

#include "errors.h"

struct ratelimit;

/* rate calls per second, burst at once (0: twice the rate). */
int ratelimit_new(int rate, int burst, struct ratelimit **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* NULL-safe. */
void ratelimit_free(struct ratelimit *rl);
/* Whether id's bucket holds a call (nothing is taken). */
bool ratelimit_allows(struct ratelimit *rl, const char *id);
/* Takes one call from id's bucket; false when it is empty. */
bool ratelimit_take(struct ratelimit *rl, const char *id);

#endif
