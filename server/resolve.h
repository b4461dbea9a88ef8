/*
 * resolve.h - which secrets a resolve returns: pure logic over plain C arrays.
 */
#ifndef COFFER_RESOLVE_H
#define COFFER_RESOLVE_H

#include <stddef.h>

/*
 * all: the names of every secret, sorted by strcmp and unique. requested: the names asked for, in
 * any order, possibly repeated; none means all. Fills take[] with the indexes into `all` to return,
 * ascending (room for n_all), and missing[] with the requested names that are not in `all`, in the
 * order first asked, each once (room for n_requested).
 */
void resolve_select(const char *const *all, size_t n_all, const char *const *requested,
                    size_t n_requested, size_t *take, size_t *n_take, const char **missing,
                    size_t *n_missing);

#endif
