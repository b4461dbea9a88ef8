/*
 * merge_plan.h - what merging one environment into another changes: pure logic over plain C
 * arrays.
 *
 * The target's overrides of both versions become exactly the source's: an override the source has
 * and the target lacks is ADDED, one both have with different values is CHANGED, one only the
 * target has is REMOVED; equal ones are not changes.
 *
 * "Different" for a restricted secret is decided by where the target's value came from, never by
 * what it says: comparing plaintexts would let an editor, who may not read a restricted value,
 * learn whether a guess equals it from a dry run. A restricted override is unchanged only when
 * the target's value was copied (by a merge) from the same original write as the source's.
 */
#ifndef COFFER_MERGE_PLAN_H
#define COFFER_MERGE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* One override: the secret, the version, its plaintext value and where it came from. */
struct merge_entry {
	const char *secret;   /* secret name */
	enum version version; /* draft or live */
	const char *value;    /* plaintext; NULL for a restricted target value (never opened) */
	size_t len;           /* bytes in value */
	size_t ref;           /* the caller's index, carried into changes */
	bool restricted;      /* the secret is restricted: compare by origin */
	int64_t row_id;       /* its value row */
	int64_t origin_id;    /* the row it was copied from; 0: written directly */
};

/* The original write a value stands for: the row it was copied from, or itself. */
static inline int64_t merge_origin(const struct merge_entry *e)
{
	return e->origin_id ? e->origin_id : e->row_id;
}

struct merge_change {
	const char *secret;             /* secret name */
	enum version version;           /* draft or live */
	enum change_kind kind;          /* added, changed or removed */
	const struct merge_entry *from; /* the source entry; NULL when removed */
	const struct merge_entry *to;   /* the target entry; NULL when added */
};

/* src and dst sorted by (secret by strcmp, version). Fills changes (room for n_src + n_dst) in that
 * order and returns how many; *live_applied counts the source's live overrides, which are what the
 * target's live version has afterwards. */
size_t merge_plan(const struct merge_entry *src, size_t n_src, const struct merge_entry *dst,
                  size_t n_dst, struct merge_change *changes, int *live_applied);

#endif
