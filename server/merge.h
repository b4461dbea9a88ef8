/*
 * merge.h - what merging one environment into another changes: pure logic over plain C arrays.
 *
 * The target's overrides of both versions become exactly the source's: an override the source has
 * and the target lacks is ADDED, one both have with different values is CHANGED, one only the
 * target has is REMOVED; equal ones are not changes.
 */
#ifndef COFFER_MERGE_H
#define COFFER_MERGE_H

#include <stddef.h>

enum { MERGE_ADDED = 1, MERGE_CHANGED = 2, MERGE_REMOVED = 3 };
enum { MERGE_VERSION_LIVE = 2 }; /* versions: 1 draft, 2 live */

/* One override: the secret, the version and its plaintext value. */
struct merge_entry {
	const char *secret; /* secret name */
	int version;        /* 1 draft, 2 live */
	const char *value;  /* plaintext */
	size_t len;         /* bytes in value */
	size_t ref;         /* the caller's index, carried into changes */
};

struct merge_change {
	const char *secret;             /* secret name */
	int version;                    /* 1 draft, 2 live */
	int kind;                       /* MERGE_ADDED, MERGE_CHANGED or MERGE_REMOVED */
	const struct merge_entry *from; /* the source entry; NULL when removed */
	const struct merge_entry *to;   /* the target entry; NULL when added */
};

/* src and dst sorted by (secret by strcmp, version). Fills changes (room for n_src + n_dst) in that
 * order and returns how many; *live_applied counts the source's live overrides, which are what the
 * target's live version has afterwards. */
size_t merge_plan(const struct merge_entry *src, size_t n_src, const struct merge_entry *dst,
                  size_t n_dst, struct merge_change *changes, int *live_applied);

#endif
