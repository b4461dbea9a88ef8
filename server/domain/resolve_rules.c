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

/* A requested name and where it was first asked. */
struct asked {
	const char *name; /* the name */
	size_t first;     /* its index in the request */
};

static int by_name_then_first(const void *a, const void *b)
{
	const struct asked *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->first > y->first) - (x->first < y->first);
}

static int by_first(const void *a, const void *b)
{
	const struct asked *x = a, *y = b;
	return (x->first > y->first) - (x->first < y->first);
}

int resolve_select(const char *const *all, size_t n_all, const char *const *requested,
                   size_t n_requested, size_t *take, size_t *n_take, const char **missing,
                   size_t *n_missing)
{
	*n_take = 0;
	*n_missing = 0;
	if (n_requested == 0) {
		for (size_t i = 0; i < n_all; i++)
			take[(*n_take)++] = i;
		return 0;
	}
	bool *wanted = calloc(n_all + 1, sizeof(*wanted));
	struct asked *asked = calloc(n_requested, sizeof(*asked));
	if (wanted == NULL || asked == NULL) {
		free(wanted);
		free(asked);
		return -1;
	}
	/* Sorted by name, each name's first request first: O(n log n) however many repeat. */
	for (size_t r = 0; r < n_requested; r++)
		asked[r] = (struct asked){requested[r], r};
	qsort(asked, n_requested, sizeof(*asked), by_name_then_first);
	size_t n_unknown = 0;
	for (size_t r = 0; r < n_requested; r++) {
		if (r > 0 && strcmp(asked[r].name, asked[r - 1].name) == 0)
			continue;
		long at = find(all, n_all, asked[r].name);
		if (at >= 0)
			wanted[at] = true;
		else
			asked[n_unknown++] =
			        asked[r]; /* r >= n_unknown: nothing unread is overwritten */
	}
	qsort(asked, n_unknown, sizeof(*asked), by_first);
	for (size_t m = 0; m < n_unknown; m++)
		missing[(*n_missing)++] = asked[m].name;
	for (size_t i = 0; i < n_all; i++)
		if (wanted[i])
			take[(*n_take)++] = i;
	free(wanted);
	free(asked);
	return 0;
}
