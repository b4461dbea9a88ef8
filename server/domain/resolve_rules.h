/*
 * resolve_rules.h - what a resolve returns: which row wins for each secret, and which secrets
 * were asked for. Pure logic over plain C arrays.
 */
#ifndef COFFER_RESOLVE_RULES_H
#define COFFER_RESOLVE_RULES_H

#include <stdbool.h>
#include <stddef.h>

/* One candidate value of a secret in (environment, version): its default, or its override. */
struct resolve_candidate {
	const char *name; /* secret name */
	bool override;    /* the environment's override; false: the project default */
};

/*
 * candidates: sorted by name (strcmp), each name once or twice. The override wins over the
 * default: fills winners[] (room for n) with one index per name, ascending, and returns how many.
 */
size_t resolve_pick(const struct resolve_candidate *candidates, size_t n, size_t *winners);

/*
 * all: the names of every secret, sorted by strcmp and unique. requested: the names asked for, in
 * any order, possibly repeated; none means all. Fills take[] with the indexes into `all` to return,
 * ascending (room for n_all), and missing[] with the requested names that are not in `all`, in the
 * order first asked, each once (room for n_requested). O((n_all + n_requested) log n): a long
 * list of names costs little more than reading it. 0, or -1 when memory runs out.
 */
int resolve_select(const char *const *all, size_t n_all, const char *const *requested,
                   size_t n_requested, size_t *take, size_t *n_take, const char **missing,
                   size_t *n_missing) __attribute__((warn_unused_result));

#endif
