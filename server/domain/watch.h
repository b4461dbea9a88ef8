/*
 * watch.h - what a watcher of (project, environment, version) sees: the effective state as row
 * identities (which row of which secret wins, and its visibility; never a value, not even
 * sealed), and the names in which two states differ. WatchSecrets (api/watch_streams.c) shares one
 * state among every stream that knows it, and sends the difference each time the project moves.
 */
#ifndef COFFER_WATCH_H
#define COFFER_WATCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "model.h"
#include "session.h"

/* Which row of one secret wins, and its visibility. */
struct watch_entry {
	const char *name;           /* the secret's name (in the state's own memory) */
	int64_t secret_id;          /* secrets.id */
	int64_t environment_id;     /* 0: the project default */
	int64_t valid_from;         /* the revision that wrote the row */
	enum version version;       /* VERSION_DEFAULT for the default, else the override's */
	enum visibility visibility; /* masked or restricted */
};

/* The effective state of (project, environment, version) at a revision: immutable, shared by
 * reference, one allocation. */
struct watch_state {
	atomic_int refs;             /* holders */
	int64_t project_id;          /* projects.id */
	int64_t revision;            /* the project's revision it was read at */
	size_t n;                    /* entries */
	struct watch_entry *entries; /* sorted by name (strcmp) */
	size_t bytes;                /* memory held */
};

/* Takes a reference. */
struct watch_state *watch_state_ref(struct watch_state *st);
/* Drops a reference; the last frees. NULL-safe. */
void watch_state_unref(struct watch_state *st);

/* The state now: from the cache when it holds it (a memory-only session serves that, else
 * COF_EWOULDBLOCK), otherwise read and offered to the cache. COF_ENOTFOUND when the project or the
 * environment does not exist. */
int watch_now(struct session *ss, const char *project, const char *environment, int version,
              struct watch_state **out, struct cof_err *e) __attribute__((warn_unused_result));

/* For a watcher resuming from revision `from`: the state then and now, from one snapshot, and the
 * names of secrets changed in between (their visibility may have moved, which rows do not show).
 * COF_EPRECOND when what changed cannot be told (the environment did not exist then, or was made
 * again since; `from` is beyond the project's revision): the watcher resyncs. */
int watch_since(struct session *ss, const char *project, const char *environment, int version,
                int64_t from, struct watch_state **then, struct watch_state **now, char ***touched,
                size_t *n_touched, struct cof_err *e) __attribute__((warn_unused_result));

/* Frees the names watch_since gave. */
void watch_names_free(char **names, size_t n);

/* The names (sorted by strcmp, each once) whose winning row or visibility differs between a and b
 * (NULL: an empty state), and the names of extra that either holds; only those in filter when
 * n_filter > 0. *out (malloc'd) points into a, b and extra. 0, or -1 when out of memory. */
int watch_diff(const struct watch_state *a, const struct watch_state *b, char *const *extra,
               size_t n_extra, const char *const *filter, size_t n_filter, const char ***out,
               size_t *n) __attribute__((warn_unused_result));

#endif
