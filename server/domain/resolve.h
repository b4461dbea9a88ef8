/*
 * resolve.h - ResolveSecrets: the effective value of every secret of (project, environment,
 * version), from one snapshot, now or as it was at a revision.
 *
 * The current state is served from the cache (cache.h) when it holds it: no database round trip,
 * each value opened for this call. Otherwise one snapshot transaction reads the rows, and what it
 * read is offered to the cache. With a memory-only session, a miss is COF_EWOULDBLOCK.
 */
#ifndef COFFER_RESOLVE_H
#define COFFER_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "model.h"
#include "cache.h"
#include "session.h"

struct resolve_request {
	const char *project;      /* project name */
	const char *environment;  /* environment name */
	enum version version;     /* draft or live */
	const char *const *names; /* secrets asked for; none: all */
	size_t n_names;           /* entries in names */
	int64_t min_revision;     /* wait (up to wait_ms) until the project reaches it */
	int64_t at_revision;      /* 0: now; else the state as it was then */
	int64_t known_revision;   /* equal to the current revision: not_modified */
	/* Where plaintexts go (a call's arena, which wipes them); NULL: malloc, and resolve_clear
	 * wipes and frees them. */
	void *(*alloc)(void *arg, size_t n);
	void *alloc_arg;
	/* The caller sends kept answers: a resolve of every name, now, may answer with the bytes
	 * kept for its set (resolved.answer) instead of opening each value. */
	bool kept_answers;
};

struct resolved_secret {
	const char *name;           /* points into the result's rows */
	char *value;                /* plaintext (see resolve_request.alloc) */
	size_t len;                 /* bytes in value */
	enum visibility visibility; /* masked or restricted */
	enum value_source source;   /* default or override */
	int64_t revision;           /* the revision that wrote the value */
};

struct resolved {
	int64_t project_id;              /* the project's identity (also when behind) */
	bool behind;                     /* min_revision is not reached yet (COF_EUNAVAIL) */
	int64_t revision;                /* the snapshot's project revision */
	bool not_modified;               /* known_revision matched: no secrets */
	struct resolved_secret *secrets; /* sorted by name */
	size_t n_secrets;                /* entries in secrets */
	const char **missing;            /* asked-for names that do not exist */
	size_t n_missing;                /* entries in missing */
	struct cached_rows *set;         /* backing storage (one reference) */
	bool values_owned;               /* values are malloc'd: resolve_clear frees them */
	/* With kept_answers: the answer kept for set, opened (malloc'd, answer_len bytes; the
	 * caller takes it, or resolve_clear wipes it), and then no secrets; or, when none is kept
	 * yet and the set is the cache's, keep_answer says the caller should offer the answer it
	 * builds (resolve_keep_answer). */
	uint8_t *answer;
	size_t answer_len;
	bool keep_answer;
};

/* Every value from one snapshot; see docs/api.md, ResolveSecrets. min_revision not reached:
 * COF_EUNAVAIL with behind set (the caller may wait for the project to move: domain_on_change);
 * at_revision beyond the current one: COF_ERANGE. */
int resolve_secrets(struct session *ss, const struct resolve_request *req, struct resolved *out,
                    struct cof_err *e) __attribute__((warn_unused_result));
/* The winning rows of (project, environment, version) now, sealed (nothing is opened): from the
 * cache, or one snapshot offered to it. A memory-only session: COF_EWOULDBLOCK when not cached. */
int resolve_state(struct session *ss, const char *project, const char *environment, int version,
                  struct cached_rows **out, struct cof_err *e) __attribute__((warn_unused_result));
/* The winning row of each secret among rows (sorted by name, the default before the override) as
 * a set of its own (one reference). */
struct store_sealed;
int resolve_make_set(const struct store_sealed *rows, size_t n, int64_t project_id,
                     int64_t revision, int64_t env_id, struct cached_rows **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Keeps packed[0..len), the whole answer the caller built from r (which said keep_answer), sealed
 * beside r's rows for the next resolves of the same set. Best effort: nothing happens when
 * another call kept one first or memory is short. */
void resolve_keep_answer(struct session *ss, const struct resolved *r, const uint8_t *packed,
                         size_t len);
/* Wipes the values and frees everything. NULL-safe. */
void resolve_clear(struct resolved *r);

#endif
