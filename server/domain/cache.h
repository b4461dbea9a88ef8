/*
 * cache.h - what a replica keeps between calls so that warm resolves and token checks need no
 * database round trip: the sealed rows of each (project, environment, version) at the revision
 * they were read, and token lookups. Values stay sealed in memory (ciphertext only); each resolve
 * opens what it returns. Coherence:
 *
 *  - Every write publishes what it changed (migration 0004: triggers call pg_notify in the
 *    writing transaction) and the listener (listener.c) drops it here; this replica's own commits
 *    drop it at once (session_tx), before their answer leaves.
 *  - A reader takes cache_generation() before its snapshot and offers what it read with that
 * generation: the offer is refused when the generation moved (the listener reconnected:
 * notifications may have been missed), or when a notification already announced a newer revision of
 * the project.
 *  - While the listener is down the cache is off: nothing is served from it or kept in it.
 *
 * Bounded: resolve rows by a byte budget, tokens by count; beyond it, entries are dropped.
 */
#ifndef COFFER_CACHE_H
#define COFFER_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* One candidate row of a resolve, as stored: its value sealed. */
struct cached_row {
	int64_t secret_id;          /* secrets.id */
	const char *name;           /* secret name */
	enum visibility visibility; /* masked or restricted */
	int64_t environment_id;     /* 0: the project default */
	enum version version;       /* VERSION_DEFAULT for the default, else the override's */
	int64_t valid_from;         /* the revision that wrote it */
	const uint8_t *sealed;      /* the sealed value */
	size_t sealed_len;          /* bytes in sealed */
};

/* A whole answer built from a set of rows (opaque bytes: the api's packed response), sealed
 * under this process's answer key (crypt_answer_seal). */
struct kept_answer {
	size_t len;       /* bytes in sealed */
	uint8_t sealed[]; /* nonce | ciphertext + tag */
};

/* The candidates of a resolve of (project, environment, version) at a revision: immutable,
 * shared by the cache and the calls reading it (reference counted), one allocation; the answer
 * built from them is kept beside them once, sealed (resolve_keep_answer). */
struct cached_rows {
	atomic_int refs;                      /* holders */
	int64_t project_id;                   /* projects.id */
	int64_t revision;                     /* the project's revision they were read at */
	int64_t environment_id;               /* the environment's id */
	int version;                          /* the version they resolve */
	_Atomic(struct kept_answer *) answer; /* the answer of every name, sealed; NULL: none yet */
	size_t n;                             /* rows */
	struct cached_row *rows; /* the value each secret resolves to, sorted by name (strcmp) */
	const char **names;      /* rows[i].name, for resolve_select */
	size_t bytes;            /* memory held, the kept answer's share counted in advance */
};

/* A set of n rows with room for names_bytes of names and blob_bytes of sealed values; the caller
 * fills rows and names (pointing into cached_rows_room) and keeps one reference. NULL on OOM. */
struct cached_rows *cached_rows_new(size_t n, size_t names_bytes, size_t blob_bytes);
/* The memory after the rows, for names and blobs, and how much of it there is. */
uint8_t *cached_rows_room(struct cached_rows *set);
/* Takes a reference. */
struct cached_rows *cached_rows_ref(struct cached_rows *set);
/* Drops a reference; the last frees. NULL-safe. */
void cached_rows_unref(struct cached_rows *set);

struct cache;

struct cache_stats {
	uint64_t hits, misses; /* resolve lookups */
	uint64_t token_hits, token_misses;
	uint64_t answer_hits;       /* resolves answered with a kept answer */
	size_t sets, bytes, tokens; /* held now */
	bool enabled;               /* serving from memory */
};

/* A cache of at most budget_bytes of resolve rows (and a bounded number of tokens); it starts
 * off. 0, or -1 when out of memory. */
int cache_new(size_t budget_bytes, struct cache **out);
void cache_free(struct cache *c);

/* The generation a reader takes before its snapshot; 0 while the cache is off. */
uint64_t cache_generation(struct cache *c);
/* The listener listens: a new generation, and the cache serves. */
void cache_enable(struct cache *c);
/* The listener lost its connection: everything is dropped, and nothing is kept or served until
 * cache_enable. */
void cache_disable(struct cache *c);
/* Project project_id is at revision (-1: it was deleted): drop what is older. */
void cache_project_changed(struct cache *c, int64_t project_id, int64_t revision);
/* Token id changed (revoked, unbound) or is gone. */
void cache_token_changed(struct cache *c, const char *id);
/* The keyring changed: drop every row (a retired key may no longer open them), and remember to
 * read the keyring again (cache_keyring_stale). */
void cache_keyring_changed(struct cache *c);
/* Whether the keyring changed since the last call (which clears it). */
bool cache_keyring_stale(struct cache *c);

/* The rows of (project, environment, version) with a reference, or NULL. */
struct cached_rows *cache_rows_get(struct cache *c, const char *project, const char *environment,
                                   int version);
/* Offers rows read at generation (the cache takes its own reference, or refuses: false). */
bool cache_rows_put(struct cache *c, uint64_t generation, const char *project,
                    const char *environment, int version, struct cached_rows *set);

/* The token whose secret hashes to hash (32 bytes), into *out; false when not cached. */
bool cache_token_get(struct cache *c, const uint8_t *hash, struct token *out);
/* Offers a token read at generation, bound to project_id (0: none). */
void cache_token_put(struct cache *c, uint64_t generation, const uint8_t *hash,
                     const struct token *t);

/* A resolve was answered with the answer kept for its set. */
void cache_count_answer(struct cache *c);

void cache_stats(struct cache *c, struct cache_stats *out);

#endif
