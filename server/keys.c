/* keys.c - keyring maintenance (see keys.h). */
#include "keys.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define REFRESH_SECONDS 5

static int add_term(void *arg, int32_t term, const uint8_t *wrapped, size_t len, bool active,
                    struct cof_err *e)
{
	return crypt_keyring_add(arg, term, wrapped, len, active, e);
}

int keys_load(struct store *s, struct crypt_keyring *kr, bool create, struct cof_err *e)
{
	int rc = store_keyring_load(s, add_term, kr, e);
	if (rc || crypt_keyring_active_term(kr) != 0 || !create)
		return rc;
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	if ((rc = crypt_keyring_wrap_new(kr, 1, wrapped, e)) ||
	    (rc = store_keyring_insert(s, 1, wrapped, sizeof(wrapped), true, e)))
		return rc;
	/* Another replica may have inserted term 1 first: load what won. */
	if ((rc = store_keyring_load(s, add_term, kr, e)))
		return rc;
	if (crypt_keyring_active_term(kr) == 0)
		return cof_err_set(e, COF_EINTERNAL, "the keyring has no active term");
	log_info("created keyring term 1");
	return 0;
}

int keys_ensure_term(struct store *s, struct crypt_keyring *kr, int32_t term, struct cof_err *e)
{
	if (term == 0 || crypt_keyring_has_term(kr, term))
		return 0;
	int rc = keys_load(s, kr, false, e);
	if (rc == 0 && crypt_keyring_has_term(kr, term))
		log_info("loaded keyring term %d", (int)term);
	return rc;
}

void keys_refresh_if_due(struct store *s, struct crypt_keyring *kr)
{
	static atomic_llong last;
	long long now = (long long)time(NULL);
	long long seen = atomic_load(&last);
	if (now - seen < REFRESH_SECONDS || !atomic_compare_exchange_strong(&last, &seen, now))
		return;
	int32_t before = crypt_keyring_active_term(kr);
	struct cof_err e = {0};
	if (keys_load(s, kr, false, &e) != 0)
		log_warn("keyring refresh: %s (%s)", e.msg, e.detail);
	else if (crypt_keyring_active_term(kr) != before)
		log_info("keyring term %d is now active", (int)crypt_keyring_active_term(kr));
}

int keys_rotate(struct store *s, struct crypt_keyring *kr, int32_t *term, struct cof_err *e)
{
	int32_t max = 0;
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	int rc = store_begin(s, e);
	if (rc)
		return rc;
	if ((rc = store_keyring_lock(s, &max, e)) ||
	    (rc = crypt_keyring_wrap_new(kr, max + 1, wrapped, e)) ||
	    (rc = store_keyring_activate(s, max + 1, wrapped, sizeof(wrapped), e))) {
		store_rollback(s);
		return rc;
	}
	if ((rc = store_commit(s, e)))
		return rc;
	*term = max + 1;
	return keys_load(s, kr, false, e);
}

static int open_row(struct store *s, struct crypt_keyring *kr, const struct store_sealed *row,
                    char **plain, size_t *len, struct cof_err *e)
{
	int rc = keys_ensure_term(s, kr, row->term, e);
	if (rc)
		return rc;
	struct crypt_value_id id = {row->project_id, row->secret_id, row->environment_id,
	                            row->version, row->valid_from};
	return crypt_open(kr, &id, row->sealed, row->sealed_len, plain, len, e);
}

int keys_rewrap(struct store *s, struct crypt_keyring *kr, const struct keys_rewrap_opts *o,
                int64_t *moved, int64_t *failed, struct cof_err *e)
{
	*moved = *failed = 0;
	int rc = keys_load(s, kr, false, e);
	if (rc)
		return rc;
	int32_t active = crypt_keyring_active_term(kr);
	int64_t after = 0;
	for (int batch = 0; o->max_batches == 0 || batch < o->max_batches; batch++) {
		struct store_sealed *rows = NULL;
		size_t n = 0;
		if ((rc = store_begin(s, e)) ||
		    (rc = store_values_for_rewrap(s, active, after, o->batch_size, true, &rows, &n,
		                                  e))) {
			store_sealed_free(rows, n);
			store_rollback(s);
			return rc;
		}
		for (size_t i = 0; i < n && rc == 0; i++) {
			char *plain = NULL;
			size_t len = 0;
			after = rows[i].row_id;
			struct cof_err oe = {0};
			if (open_row(s, kr, &rows[i], &plain, &len, &oe) != 0) {
				log_error("rewrap: value row %lld (secret %s) does not open: %s",
				          (long long)rows[i].row_id, rows[i].secret, oe.msg);
				(*failed)++;
				continue;
			}
			struct crypt_value_id id = {rows[i].project_id, rows[i].secret_id,
			                            rows[i].environment_id, rows[i].version,
			                            rows[i].valid_from};
			uint8_t *blob = NULL;
			size_t blob_len = 0;
			rc = crypt_seal(kr, &id, (const uint8_t *)plain, len, &blob, &blob_len, e);
			crypt_free_plain(plain, len + 1);
			if (rc == 0)
				rc = store_value_reseal(s, rows[i].row_id,
				                        crypt_blob_term(blob, blob_len), blob,
				                        blob_len, e);
			free(blob);
		}
		store_sealed_free(rows, n);
		if (rc || (rc = store_commit(s, e))) {
			store_rollback(s);
			return rc;
		}
		*moved += (int64_t)n;
		if (n == 0)
			break;
		if (o->delay_ms > 0)
			nanosleep(&(struct timespec){o->delay_ms / 1000,
			                             (o->delay_ms % 1000) * 1000000L},
			          NULL);
	}
	*moved -= *failed;
	return 0;
}

int keys_rekey(struct store *s, struct crypt_keyring *kr, struct crypt_keyring *next,
               struct cof_err *e)
{
	int32_t terms[1024];
	int64_t counts[1024];
	int n = 0;
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	int rc = keys_load(s, kr, false, e);
	if (rc || (rc = store_begin(s, e)))
		return rc;
	int32_t max = 0;
	if ((rc = store_keyring_lock(s, &max, e)) ||
	    (rc = store_term_counts(s, terms, counts, 1024, &n, e)))
		goto out_rollback;
	for (int i = 0; i < n; i++)
		if ((rc = keys_ensure_term(s, kr, terms[i], e)) ||
		    (rc = crypt_keyring_rewrap_term(kr, terms[i], next, wrapped, e)) ||
		    (rc = store_keyring_set_wrapped(s, terms[i], wrapped, sizeof(wrapped), e)))
			goto out_rollback;
	if ((rc = crypt_token_key_rewrap(kr, next, wrapped, e)) == 0)
		rc = store_server_key_set(s, "token-hash", wrapped, sizeof(wrapped), e);
	else if (rc == COF_EINTERNAL)
		rc = 0; /* no token key yet: nothing to re-wrap */
	if (rc)
		goto out_rollback;
	return store_commit(s, e);
out_rollback:
	store_rollback(s);
	return rc;
}

int keys_verify(struct store *s, struct crypt_keyring *kr, int64_t *ok, int64_t *bad,
                struct cof_err *e)
{
	*ok = *bad = 0;
	int64_t after = 0;
	int rc = keys_load(s, kr, false, e);
	for (;;) {
		struct store_sealed *rows = NULL;
		size_t n = 0;
		if (rc || (rc = store_values_for_rewrap(s, 0, after, 500, false, &rows, &n, e))) {
			store_sealed_free(rows, n);
			return rc;
		}
		for (size_t i = 0; i < n; i++) {
			char *plain = NULL;
			size_t len = 0;
			struct cof_err oe = {0};
			after = rows[i].row_id;
			if (open_row(s, kr, &rows[i], &plain, &len, &oe) == 0)
				(*ok)++;
			else
				(*bad)++;
			crypt_free_plain(plain, len + 1);
		}
		store_sealed_free(rows, n);
		if (n == 0)
			return 0;
	}
}
