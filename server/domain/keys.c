/* keys.c - keyring maintenance (see keys.h). */
#include "keys.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coffer_limits.h"
#include "crypt.h"
#include "cache.h"
#include "log.h"
#include "session_internal.h"
#include "store.h"

#define REFRESH_SECONDS 5
#define TOKEN_KEY_NAME  "token-hash"

static int add_term(void *arg, int32_t term, const uint8_t *wrapped, size_t len, bool active,
                    struct cof_err *e)
{
	return crypt_keyring_add(arg, term, wrapped, len, active, e);
}

int keys_load(struct session *ss, bool create, struct cof_err *e)
{
	int rc = store_keyring_load(ss->store, add_term, ss->kr, e);
	if (rc || crypt_keyring_active_term(ss->kr) != 0 || !create)
		return rc;
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	if ((rc = crypt_keyring_wrap_new(ss->kr, 1, wrapped, e)) ||
	    (rc = store_keyring_insert(ss->store, 1, wrapped, sizeof(wrapped), true, e)))
		return rc;
	/* Another replica may have inserted term 1 first: load what won. */
	if ((rc = store_keyring_load(ss->store, add_term, ss->kr, e)))
		return rc;
	if (crypt_keyring_active_term(ss->kr) == 0)
		return cof_err_set(e, COF_EINTERNAL, "the keyring has no active term");
	log_info("created keyring term 1");
	return 0;
}

int keys_load_token_key(struct session *ss, struct cof_err *e)
{
	uint8_t *wrapped = NULL;
	size_t len = 0;
	int rc = store_server_key_get(ss->store, TOKEN_KEY_NAME, &wrapped, &len, e);
	if (rc == COF_ENOTFOUND) {
		uint8_t fresh[CRYPT_WRAPPED_KEY_BYTES];
		if ((rc = crypt_token_key_new(ss->kr, fresh, e)) ||
		    (rc = store_server_key_insert(ss->store, TOKEN_KEY_NAME, fresh, sizeof(fresh),
		                                  e)) ||
		    (rc = store_server_key_get(ss->store, TOKEN_KEY_NAME, &wrapped, &len, e)))
			return rc;
	} else if (rc) {
		return rc;
	}
	rc = crypt_token_key_set(ss->kr, wrapped, len, e);
	free(wrapped);
	return rc;
}

int keys_ensure_term(struct session *ss, int32_t term, struct cof_err *e)
{
	if (term == 0 || crypt_keyring_has_term(ss->kr, term))
		return 0;
	if (ss->store == NULL) /* a session that serves from memory only */
		return cof_err_set(e, COF_EWOULDBLOCK, "the keyring must be read");
	int rc = keys_load(ss, false, e);
	if (rc == 0 && crypt_keyring_has_term(ss->kr, term))
		log_info("loaded keyring term %d", (int)term);
	return rc;
}

/* When the keyring was last read (seconds since the epoch). */
static atomic_llong last_refresh;

void keys_refresh_if_due(struct session *ss)
{
	atomic_llong *const last = &last_refresh;
	struct cache *cache = session_cache(ss);
	if (cache && cache_keyring_stale(cache)) /* a notification said it changed */
		atomic_store(last, 0);
	long long now = (long long)time(NULL);
	long long seen = atomic_load(last);
	if (now - seen < REFRESH_SECONDS || !atomic_compare_exchange_strong(last, &seen, now))
		return;
	int32_t before = crypt_keyring_active_term(ss->kr);
	struct cof_err e = {0};
	if (keys_load(ss, false, &e) != 0)
		log_warn("keyring refresh: %s (%s)", e.msg, e.detail);
	else if (crypt_keyring_active_term(ss->kr) != before)
		log_info("keyring term %d is now active", (int)crypt_keyring_active_term(ss->kr));
}

int32_t keys_active_term(struct session *ss)
{
	return crypt_keyring_active_term(ss->kr);
}

struct rotate_tx {
	struct crypt_keyring *kr; /* the keyring to add a term to */
	int32_t term;             /* out: the new active term */
};

static int rotate_body(struct store *s, void *arg, struct cof_err *e)
{
	struct rotate_tx *t = arg;
	int32_t max = 0;
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	int rc;
	if ((rc = store_keyring_lock(s, &max, e)) ||
	    (rc = crypt_keyring_wrap_new(t->kr, max + 1, wrapped, e)) ||
	    (rc = store_keyring_activate(s, max + 1, wrapped, sizeof(wrapped), e)))
		return rc;
	t->term = max + 1;
	return 0;
}

int keys_rotate(struct session *ss, int32_t *term, struct cof_err *e)
{
	struct rotate_tx t = {.kr = ss->kr};
	int rc = session_tx(ss, STORE_TX_WRITE, rotate_body, &t, NULL, e);
	if (rc)
		return rc;
	*term = t.term;
	return keys_load(ss, false, e);
}

/* Opens a row read for key maintenance (its own identity, its own term). */
static int open_row(struct session *ss, const struct store_sealed *row, char **plain, size_t *len,
                    struct cof_err *e)
{
	int rc = keys_ensure_term(ss, row->term, e);
	if (rc)
		return rc;
	struct crypt_value_id id = {row->project_id, row->secret_id, row->environment_id,
	                            row->version, row->valid_from};
	return crypt_open(ss->kr, &id, row->sealed, row->sealed_len, plain, len, e);
}

static void pause_ms(int ms)
{
	if (ms > 0)
		nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

struct rewrap_tx {
	struct session *ss; /* the session it runs in */
	int32_t active;     /* in: the term to move rows to */
	int64_t after;      /* in: rows after this id */
	int64_t last;       /* out: the last row id of the batch */
	int limit;          /* in: rows per batch */
	size_t n;           /* out: rows in the batch */
	int64_t failed;     /* out: rows that did not open */
};

static int rewrap_body(struct store *s, void *arg, struct cof_err *e)
{
	struct rewrap_tx *t = arg;
	struct store_sealed *rows = NULL;
	t->n = 0;
	t->failed = 0;
	t->last = t->after;
	int rc = store_values_for_rewrap(s, t->active, t->after, t->limit, true, &rows, &t->n, e);
	for (size_t i = 0; rc == 0 && i < t->n; i++) {
		char *plain = NULL;
		size_t len = 0;
		struct cof_err oe = {0};
		if (open_row(t->ss, &rows[i], &plain, &len, &oe) != 0) {
			log_error("rewrap: value row %lld (secret %s) does not open: %s",
			          (long long)rows[i].row_id, rows[i].secret, oe.msg);
			t->failed++;
			continue;
		}
		struct crypt_value_id id = {rows[i].project_id, rows[i].secret_id,
		                            rows[i].environment_id, rows[i].version,
		                            rows[i].valid_from};
		uint8_t *blob = NULL;
		size_t blob_len = 0;
		rc = crypt_seal(t->ss->kr, &id, (const uint8_t *)plain, len, &blob, &blob_len, e);
		crypt_free_plain(plain, len + 1);
		if (rc == 0)
			rc = store_value_reseal(s, rows[i].row_id, crypt_blob_term(blob, blob_len),
			                        blob, blob_len, e);
		free(blob);
	}
	if (rc == 0 && t->n > 0)
		t->last = rows[t->n - 1].row_id;
	store_sealed_free(rows, t->n);
	return rc;
}

int keys_rewrap(struct session *ss, const struct keys_walk_opts *o, int64_t *moved, int64_t *failed,
                struct cof_err *e)
{
	*moved = *failed = 0;
	int64_t total = 0, done = 0;
	int rc = keys_load(ss, false, e);
	struct rewrap_tx t = {.ss = ss, .limit = o->batch_size};
	t.active = crypt_keyring_active_term(ss->kr);
	if (rc || (rc = store_values_count(ss->store, t.active, &total, e)))
		return rc;
	for (int batch = 0; o->max_batches == 0 || batch < o->max_batches; batch++) {
		if ((rc = session_tx(ss, STORE_TX_WRITE, rewrap_body, &t, NULL, e)))
			return rc;
		t.after = t.last;
		*moved += (int64_t)t.n - t.failed;
		*failed += t.failed;
		done += (int64_t)t.n;
		if (o->progress)
			o->progress(o->progress_arg, done, total > done ? total : done);
		if (t.n == 0)
			break;
		pause_ms(o->delay_ms);
	}
	return 0;
}

struct rekey_tx {
	struct session *ss;             /* the session it runs in */
	struct crypt_keyring *next;     /* in: the new root key's keyring */
	const struct keys_walk_opts *o; /* in: progress */
};

static int rekey_body(struct store *s, void *arg, struct cof_err *e)
{
	struct rekey_tx *t = arg;
	int32_t terms[LIMIT_KEY_TERMS];
	int64_t counts[LIMIT_KEY_TERMS];
	int n = 0;
	int32_t max = 0;
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	int rc;
	if ((rc = store_keyring_lock(s, &max, e)) ||
	    (rc = store_term_counts(s, terms, counts, LIMIT_KEY_TERMS, &n, e)))
		return rc;
	for (int i = 0; i < n; i++) {
		if ((rc = keys_ensure_term(t->ss, terms[i], e)) ||
		    (rc = crypt_keyring_rewrap_term(t->ss->kr, terms[i], t->next, wrapped, e)) ||
		    (rc = store_keyring_set_wrapped(s, terms[i], wrapped, sizeof(wrapped), e)))
			return rc;
		if (t->o && t->o->progress)
			t->o->progress(t->o->progress_arg, i + 1, n);
	}
	if ((rc = crypt_token_key_rewrap(t->ss->kr, t->next, wrapped, e)) == 0)
		rc = store_server_key_set(s, TOKEN_KEY_NAME, wrapped, sizeof(wrapped), e);
	else if (rc == COF_EINTERNAL)
		rc = 0; /* no token key yet: nothing to re-wrap */
	return rc;
}

int keys_rekey(struct session *ss, struct crypt_keyring *next, const struct keys_walk_opts *o,
               struct cof_err *e)
{
	int rc = keys_load(ss, false, e);
	struct rekey_tx t = {ss, next, o};
	return rc ? rc : session_tx(ss, STORE_TX_WRITE, rekey_body, &t, NULL, e);
}

int keys_verify(struct session *ss, const struct keys_walk_opts *o, int64_t *ok, int64_t *bad,
                struct cof_err *e)
{
	*ok = *bad = 0;
	int64_t after = 0, total = 0;
	int limit = o && o->batch_size > 0 ? o->batch_size : 500;
	int rc = keys_load(ss, false, e);
	if (rc || (rc = store_values_count(ss->store, 0, &total, e)))
		return rc;
	for (;;) {
		struct store_sealed *rows = NULL;
		size_t n = 0;
		if ((rc = store_values_for_rewrap(ss->store, 0, after, limit, false, &rows, &n,
		                                  e))) {
			store_sealed_free(rows, n);
			return rc;
		}
		for (size_t i = 0; i < n; i++) {
			char *plain = NULL;
			size_t len = 0;
			struct cof_err oe = {0};
			after = rows[i].row_id;
			if (open_row(ss, &rows[i], &plain, &len, &oe) == 0)
				(*ok)++;
			else
				(*bad)++;
			crypt_free_plain(plain, len + 1);
		}
		store_sealed_free(rows, n);
		int64_t done = *ok + *bad;
		if (o && o->progress && n > 0)
			o->progress(o->progress_arg, done, total > done ? total : done);
		if (n == 0)
			return 0;
	}
}

int keys_status(struct session *ss, int32_t *terms, int64_t *counts, int cap, int *n,
                struct cof_err *e)
{
	return store_term_counts(ss->store, terms, counts, cap, n, e);
}
