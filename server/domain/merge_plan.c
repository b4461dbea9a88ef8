/* merge_plan.c - the override diff of MergeEnvironment (see merge_plan.h). */
#include "merge_plan.h"

#include <string.h>

static int cmp(const struct merge_entry *a, const struct merge_entry *b)
{
	int c = strcmp(a->secret, b->secret);
	return c ? c : (a->version > b->version) - (a->version < b->version);
}

/* Whether the target entry already holds what the source entry holds. */
static bool same(const struct merge_entry *src, const struct merge_entry *dst)
{
	if (src->restricted || dst->restricted)
		return dst->origin_id != 0 && dst->origin_id == merge_origin(src);
	return src->len == dst->len && memcmp(src->value, dst->value, src->len) == 0;
}

size_t merge_plan(const struct merge_entry *src, size_t n_src, const struct merge_entry *dst,
                  size_t n_dst, struct merge_change *changes, int *live_applied)
{
	size_t i = 0, j = 0, n = 0;
	*live_applied = 0;
	for (size_t k = 0; k < n_src; k++)
		*live_applied += src[k].version == VERSION_LIVE;
	while (i < n_src || j < n_dst) {
		int c = i == n_src ? 1 : j == n_dst ? -1 : cmp(&src[i], &dst[j]);
		if (c < 0) {
			changes[n++] = (struct merge_change){src[i].secret, src[i].version,
			                                     CHANGE_ADDED, &src[i], NULL};
			i++;
		} else if (c > 0) {
			changes[n++] = (struct merge_change){dst[j].secret, dst[j].version,
			                                     CHANGE_REMOVED, NULL, &dst[j]};
			j++;
		} else {
			if (!same(&src[i], &dst[j]))
				changes[n++] =
				        (struct merge_change){src[i].secret, src[i].version,
				                              CHANGE_CHANGED, &src[i], &dst[j]};
			i++;
			j++;
		}
	}
	return n;
}
