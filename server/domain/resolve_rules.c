/* resolve_rules.c - which row wins, and the names filter of ResolveSecrets (see resolve_rules.h).
 */
#include "resolve_rules.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

size_t resolve_pick(const struct resolve_candidate *candidates, size_t n, size_t *winners)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		bool same = count > 0 &&
		            strcmp(candidates[winners[count - 1]].name, candidates[i].name) == 0;
		if (!same)
			winners[count++] = i;
		else if (candidates[i].override && !candidates[winners[count - 1]].override)
			winners[count - 1] = i;
	}
	return count;
}

static long find(const char *const *all, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(all[mid], name);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void resolve_select(const char *const *all, size_t n_all, const char *const *requested,
                    size_t n_requested, size_t *take, size_t *n_take, const char **missing,
                    size_t *n_missing)
{
	*n_take = 0;
	*n_missing = 0;
	if (n_requested == 0) {
		for (size_t i = 0; i < n_all; i++)
			take[(*n_take)++] = i;
		return;
	}
	bool *wanted = calloc(n_all ? n_all : 1, sizeof(*wanted));
	for (size_t r = 0; r < n_requested; r++) {
		long at = find(all, n_all, requested[r]);
		if (at >= 0 && wanted) {
			wanted[at] = true;
			continue;
		}
		if (at >= 0)
			continue;
		bool seen = false;
		for (size_t m = 0; m < *n_missing && !seen; m++)
			seen = strcmp(missing[m], requested[r]) == 0;
		if (!seen)
			missing[(*n_missing)++] = requested[r];
	}
	for (size_t i = 0; wanted && i < n_all; i++)
		if (wanted[i])
			take[(*n_take)++] = i;
	free(wanted);
}
