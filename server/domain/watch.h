/*
 * watch.h - what a watcher of (project, environment, version) sees: the effective state as row
 * identities (which row of which secret wins, and its visibility; never a value), and the names in
 * which two states differ. WatchSecrets (api/watch.c) keeps one state per stream and sends the
 * difference each time the project moves.
 */
#ifndef COFFER_WATCH_H
#define COFFER_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "errors.h"
#include "session.h"

/* For a watcher resuming from revision `from`: the state then and now, from one snapshot, and the
 * names of secrets changed in between (their visibility may have moved, which rows do not show).
 * COF_EPRECOND when what changed cannot be told (the environment did not exist then, or was made
 * again since; `from` is beyond the project's revision): the watcher resyncs. */
int watch_since(struct session *ss, const char *project, const char *environment, int version,
                int64_t from, struct cached_rows **then, struct cached_rows **now, char ***touched,
                size_t *n_touched, struct cof_err *e) __attribute__((warn_unused_result));

/* Frees the names watch_since gave. */
void watch_names_free(char **names, size_t n);

/* The names (sorted by strcmp, each once) whose winning row or visibility differs between a and b
 * (NULL: an empty state), and the names of extra that either holds; only those in filter when
 * n_filter > 0. *out (malloc'd) points into a, b and extra. 0, or -1 when out of memory. */
int watch_diff(const struct cached_rows *a, const struct cached_rows *b, char *const *extra,
               size_t n_extra, const char *const *filter, size_t n_filter, const char ***out,
               size_t *n) __attribute__((warn_unused_result));

#endif
