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

#include <stdint.h>

#include "crypt.h"
#include "errors.h"
#include "store.h"

/* Loads every term; on an empty keyring creates term 1 (race-safe across replicas). */
int keys_load(struct store *s, struct crypt_keyring *kr, bool create, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Makes sure `term` is loaded, reloading the keyring if it is new. */
int keys_ensure_term(struct store *s, struct crypt_keyring *kr, int32_t term, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Reloads the keyring when the last reload is older than a few seconds (thread-safe). */
void keys_refresh_if_due(struct store *s, struct crypt_keyring *kr);
/* Adds and activates a new term; *term is its number. */
int keys_rotate(struct store *s, struct crypt_keyring *kr, int32_t *term, struct cof_err *e)
        __attribute__((warn_unused_result));

struct keys_rewrap_opts {
	int batch_size;  /* rows per transaction */
	int max_batches; /* stop after this many (0: until done) */
	int delay_ms;    /* pause between batches */
};

/* Re-seals rows under the active term; *moved counts them, *failed those that did not open. */
int keys_rewrap(struct store *s, struct crypt_keyring *kr, const struct keys_rewrap_opts *o,
                int64_t *moved, int64_t *failed, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Re-wraps every term and the token key of `kr` under the root key of `next`, in one transaction.
 */
int keys_rekey(struct store *s, struct crypt_keyring *kr, struct crypt_keyring *next,
               struct cof_err *e) __attribute__((warn_unused_result));
/* Opens every stored value row: *ok and *bad count them. */
int keys_verify(struct store *s, struct crypt_keyring *kr, int64_t *ok, int64_t *bad,
                struct cof_err *e) __attribute__((warn_unused_result));

#endif
