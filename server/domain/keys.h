/*
 * keys.h - the keyring's life: load, rotate, rewrap, rekey, verify (cofferd keys ...).
 *
 * rotate adds a term and makes it active (new writes use it; old terms still open). rewrap moves
 * value rows sealed under older terms to the active one, one committed batch at a time, so a run
 * killed halfway loses nothing and the next run carries on. rekey re-wraps the keyring (and the
 * token key) under a new root key; values are not touched. Running servers learn new terms when
 * they meet one and refresh the active term every few seconds.
 */
#ifndef COFFER_KEYS_H
#define COFFER_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "errors.h"
#include "session.h"

/* Loads every term; on an empty keyring with `create`, makes term 1 (race-safe across replicas).
 */
int keys_load(struct session *ss, bool create, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Loads the token-hashing key, creating it on a fresh database. */
int keys_load_token_key(struct session *ss, struct cof_err *e) __attribute__((warn_unused_result));
/* Makes sure `term` is loaded, reloading the keyring if it is new. */
int keys_ensure_term(struct session *ss, int32_t term, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Reloads the keyring when the last reload is older than a few seconds, or a notification said it
 * changed (thread-safe). */
void keys_refresh_if_due(struct session *ss);
/* Adds and activates a new term; *term is its number. */
int keys_rotate(struct session *ss, int32_t *term, struct cof_err *e)
        __attribute__((warn_unused_result));

/* Told how far a long walk is: done of total rows (total may grow while it runs). */
typedef void (*keys_progress_fn)(void *arg, int64_t done, int64_t total);

struct keys_walk_opts {
	int batch_size;            /* rows per transaction */
	int max_batches;           /* stop after this many (0: until done) */
	int delay_ms;              /* pause between batches */
	keys_progress_fn progress; /* after each batch; may be NULL */
	void *progress_arg;        /* its argument */
};

/* Re-seals rows under the active term; *moved counts them, *failed those that did not open. */
int keys_rewrap(struct session *ss, const struct keys_walk_opts *o, int64_t *moved, int64_t *failed,
                struct cof_err *e) __attribute__((warn_unused_result));
/* Re-wraps every term and the token key of the session's keyring under the root key of `next`,
 * in one transaction. */
int keys_rekey(struct session *ss, struct crypt_keyring *next, const struct keys_walk_opts *o,
               struct cof_err *e) __attribute__((warn_unused_result));
/* Opens every stored value row: *ok and *bad count them. */
int keys_verify(struct session *ss, const struct keys_walk_opts *o, int64_t *ok, int64_t *bad,
                struct cof_err *e) __attribute__((warn_unused_result));
/* Value rows per term: terms[i] seals counts[i] rows; *n entries (at most cap). */
int keys_status(struct session *ss, int32_t *terms, int64_t *counts, int cap, int *n,
                struct cof_err *e) __attribute__((warn_unused_result));
/* The active term of the session's keyring. */
int32_t keys_active_term(struct session *ss);

#endif
