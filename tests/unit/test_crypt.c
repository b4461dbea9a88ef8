/*
 * test_crypt.c - sealing (server/crypt/): a round trip, every tamper case, wrong keys, terms and
 * their rotation, root key files and token formats.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "check_run.h"
#include "crypt.h"
#include "errors.h"

static struct crypt_keyring *keyring_with_term(uint8_t fill, int32_t term)
{
	uint8_t root[CRYPT_ROOT_KEY_BYTES];
	memset(root, fill, sizeof(root));
	struct crypt_keyring *kr = NULL;
	struct cof_err e = {0};
	ck_assert_int_eq(crypt_init(), 0);
	ck_assert_int_eq(crypt_keyring_new_from_key(root, &kr, &e), 0);
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	ck_assert_int_eq(crypt_keyring_wrap_new(kr, term, wrapped, &e), 0);
	ck_assert_int_eq(crypt_keyring_add(kr, term, wrapped, sizeof(wrapped), true, &e), 0);
	return kr;
}

static const struct crypt_value_id ID = {7, 42, 0, 0, 3};
static const char PLAIN[] = "canary-plaintext-0123456789";

static void seal(struct crypt_keyring *kr, const struct crypt_value_id *id, uint8_t **blob,
                 size_t *len)
{
	struct cof_err e = {0};
	ck_assert_int_eq(crypt_seal(kr, id, (const uint8_t *)PLAIN, strlen(PLAIN), blob, len, &e),
	                 0);
}

static int try_open(struct crypt_keyring *kr, const struct crypt_value_id *id, const uint8_t *blob,
                    size_t len)
{
	char *plain = NULL;
	size_t plen = 0;
	struct cof_err e = {0};
	int rc = crypt_open(kr, id, blob, len, &plain, &plen, &e);
	if (rc == 0) {
		ck_assert_uint_eq(plen, strlen(PLAIN));
		ck_assert_mem_eq(plain, PLAIN, plen);
	} else {
		ck_assert_ptr_null(plain);
		ck_assert_int_eq(rc, COF_ETAMPER);
		ck_assert(strstr(e.msg, PLAIN) == NULL);
	}
	crypt_free_plain(plain, plen);
	return rc;
}

START_TEST(seal_open_round_trip)
{
	struct crypt_keyring *kr = keyring_with_term(1, 1);
	uint8_t *blob;
	size_t len;
	seal(kr, &ID, &blob, &len);
	ck_assert_uint_eq(len, CRYPT_HEADER_BYTES + strlen(PLAIN) + CRYPT_TAG_BYTES);
	ck_assert_int_eq(blob[0], CRYPT_FORMAT_V1);
	ck_assert_int_eq(crypt_blob_term(blob, len), 1);
	ck_assert(memmem(blob, len, PLAIN, strlen(PLAIN)) == NULL);
	ck_assert_int_eq(try_open(kr, &ID, blob, len), 0);
	/* Two seals of the same value differ (random nonce). */
	uint8_t *blob2;
	size_t len2;
	seal(kr, &ID, &blob2, &len2);
	ck_assert(memcmp(blob, blob2, len) != 0);
	free(blob);
	free(blob2);
	/* The empty value. */
	struct cof_err e = {0};
	char *plain = NULL;
	size_t plen = 9;
	ck_assert_int_eq(crypt_seal(kr, &ID, (const uint8_t *)"", 0, &blob, &len, &e), 0);
	ck_assert_int_eq(crypt_open(kr, &ID, blob, len, &plain, &plen, &e), 0);
	ck_assert_uint_eq(plen, 0);
	ck_assert_str_eq(plain, "");
	crypt_free_plain(plain, plen);
	free(blob);
	crypt_keyring_free(kr);
}
END_TEST

START_TEST(tamper_every_bit)
{
	struct crypt_keyring *kr = keyring_with_term(2, 1);
	uint8_t *blob;
	size_t len;
	seal(kr, &ID, &blob, &len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			blob[i] ^= (uint8_t)(1u << bit);
			ck_assert_msg(try_open(kr, &ID, blob, len) == COF_ETAMPER,
			              "byte %zu bit %d", i, bit);
			blob[i] ^= (uint8_t)(1u << bit);
		}
	}
	ck_assert_int_eq(try_open(kr, &ID, blob, len), 0);
	free(blob);
	crypt_keyring_free(kr);
}
END_TEST

START_TEST(tamper_truncated_and_extended)
{
	struct crypt_keyring *kr = keyring_with_term(3, 1);
	uint8_t *blob;
	size_t len;
	seal(kr, &ID, &blob, &len);
	for (size_t n = 0; n < len; n++)
		ck_assert_msg(try_open(kr, &ID, blob, n) == COF_ETAMPER, "length %zu", n);
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, blob, len);
	longer[len] = 0;
	ck_assert_int_eq(try_open(kr, &ID, longer, len + 1), COF_ETAMPER);
	free(longer);
	free(blob);
	crypt_keyring_free(kr);
}
END_TEST

START_TEST(tamper_swapped_identity)
{
	struct crypt_keyring *kr = keyring_with_term(4, 1);
	uint8_t *blob;
	size_t len;
	seal(kr, &ID, &blob, &len);
	struct crypt_value_id moved[] = {
	        {8, 42, 0, 0, 3}, /* another project */
	        {7, 43, 0, 0, 3}, /* another secret */
	        {7, 42, 5, 1, 3}, /* an environment override */
	        {7, 42, 0, 2, 3}, /* another version */
	        {7, 42, 0, 0, 4}, /* another revision (replay of an old value) */
	};
	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++)
		ck_assert_msg(try_open(kr, &moved[i], blob, len) == COF_ETAMPER, "identity %zu", i);
	free(blob);
	/* An override: each part of its identity alone, the others kept, must make it fail. */
	const struct crypt_value_id over = {7, 42, 5, 1, 3};
	seal(kr, &over, &blob, &len);
	ck_assert_int_eq(try_open(kr, &over, blob, len), 0);
	const struct crypt_value_id one_change[] = {
	        {8, 42, 5, 1, 3}, /* the project only */
	        {7, 43, 5, 1, 3}, /* the secret only */
	        {7, 42, 6, 1, 3}, /* the environment only: same version and revision */
	        {7, 42, 5, 2, 3}, /* the version only: draft sealed, opened as live */
	        {7, 42, 5, 1, 4}, /* the revision only */
	        {7, 42, 0, 1, 3}, /* as the project default */
	};
	for (size_t i = 0; i < sizeof(one_change) / sizeof(one_change[0]); i++)
		ck_assert_msg(try_open(kr, &one_change[i], blob, len) == COF_ETAMPER,
		              "override identity %zu opened", i);
	free(blob);
	crypt_keyring_free(kr);
}
END_TEST

START_TEST(wrong_key)
{
	struct crypt_keyring *a = keyring_with_term(5, 1);
	struct crypt_keyring *b = keyring_with_term(6, 1);
	uint8_t *blob;
	size_t len;
	seal(a, &ID, &blob, &len);
	ck_assert_int_eq(try_open(b, &ID, blob, len), COF_ETAMPER);
	/* A wrapped data key does not open under another root key, and says why. */
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	struct cof_err e = {0};
	ck_assert_int_eq(crypt_keyring_wrap_new(a, 2, wrapped, &e), 0);
	ck_assert_int_ne(crypt_keyring_add(b, 2, wrapped, sizeof(wrapped), false, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "wrong root key"));
	/* Nor under its own root key with another term number. */
	ck_assert_int_ne(crypt_keyring_add(a, 3, wrapped, sizeof(wrapped), false, &e), 0);
	free(blob);
	crypt_keyring_free(a);
	crypt_keyring_free(b);
}
END_TEST

START_TEST(terms_rotate)
{
	struct crypt_keyring *kr = keyring_with_term(7, 1);
	uint8_t *old_blob, *new_blob;
	size_t old_len, new_len;
	seal(kr, &ID, &old_blob, &old_len);
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	struct cof_err e = {0};
	ck_assert_int_eq(crypt_keyring_wrap_new(kr, 2, wrapped, &e), 0);
	ck_assert_int_eq(crypt_keyring_add(kr, 2, wrapped, sizeof(wrapped), true, &e), 0);
	ck_assert_int_eq(crypt_keyring_active_term(kr), 2);
	seal(kr, &ID, &new_blob, &new_len);
	ck_assert_int_eq(crypt_blob_term(new_blob, new_len), 2);
	ck_assert_int_eq(try_open(kr, &ID, old_blob, old_len), 0);
	ck_assert_int_eq(try_open(kr, &ID, new_blob, new_len), 0);
	/* A blob relabelled with the other term fails. */
	old_blob[4] = 2;
	ck_assert_int_eq(try_open(kr, &ID, old_blob, old_len), COF_ETAMPER);
	free(old_blob);
	free(new_blob);
	crypt_keyring_free(kr);
}
END_TEST

static char *write_temp(const void *data, size_t len)
{
	char *path = strdup("/tmp/coffer-unit-key-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

START_TEST(root_key_files)
{
	ck_assert_int_eq(crypt_init(), 0);
	struct crypt_keyring *kr = NULL;
	struct cof_err e = {0};
	uint8_t raw[32], raw_nl[32];
	memset(raw, 9, sizeof(raw));
	memset(raw_nl, 0xa5, sizeof(raw_nl));
	raw_nl[31] = '\n'; /* a raw key may end in a newline byte */
	static const char hex[] =
	        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	char hex_nl[80], hex_crlf[80], hex_two_nl[80], hex_space[80];
	snprintf(hex_nl, sizeof(hex_nl), "%s\n", hex);
	snprintf(hex_crlf, sizeof(hex_crlf), "%s\r\n", hex);
	snprintf(hex_two_nl, sizeof(hex_two_nl), "%s\n\n", hex);
	snprintf(hex_space, sizeof(hex_space), " %s", hex);
	const struct {
		const char *name;
		const void *bytes;
		size_t len;
		bool ok;
	} cases[] = {
	        {"raw", raw, 32, true},
	        {"raw ending in a newline byte", raw_nl, 32, true},
	        {"hex", hex, 64, true},
	        {"hex and newline", hex_nl, 65, true},
	        {"hex and CRLF", hex_crlf, 66, true},
	        {"hex and two newlines", hex_two_nl, 66, false},
	        {"hex after a space", hex_space, 65, false},
	        {"128-bit hex as 32 bytes", hex, 32, false},
	        {"31 raw bytes", raw, 31, false},
	        {"33 raw bytes", raw, 32 + 1, false},
	        {"short", "abcd\n", 5, false},
	        {"bad hex", "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 64,
	         false},
	        {"empty", "", 0, false},
	};
	uint8_t thirty_three[33];
	memset(thirty_three, 7, sizeof(thirty_three));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const void *bytes = cases[i].len == 33 ? thirty_three : cases[i].bytes;
		char *p = write_temp(bytes, cases[i].len);
		int rc = crypt_keyring_new(p, &kr, &e);
		if (cases[i].ok) {
			ck_assert_msg(rc == 0, "%s: %s", cases[i].name, e.msg);
			crypt_keyring_free(kr);
		} else {
			ck_assert_msg(rc == COF_EINVAL, "%s was accepted", cases[i].name);
			ck_assert_ptr_nonnull(
			        strstr(e.msg, "exactly 32 raw bytes or 64 hex digits"));
		}
		unlink(p);
		free(p);
	}
	/* the same key, raw or as hex, makes the same keyring */
	uint8_t key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	char *raw_path = write_temp(key, 32), *hex_path = write_temp(hex_nl, 65);
	struct crypt_keyring *a = NULL, *b = NULL;
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	ck_assert_int_eq(crypt_keyring_new(raw_path, &a, &e), 0);
	ck_assert_int_eq(crypt_keyring_new(hex_path, &b, &e), 0);
	ck_assert_int_eq(crypt_keyring_wrap_new(a, 1, wrapped, &e), 0);
	ck_assert_int_eq(crypt_keyring_add(b, 1, wrapped, sizeof(wrapped), true, &e), 0);
	crypt_keyring_free(a);
	crypt_keyring_free(b);
	unlink(raw_path);
	unlink(hex_path);
	free(raw_path);
	free(hex_path);
	ck_assert_int_eq(crypt_keyring_new("/nonexistent/coffer.key", &kr, &e), COF_EINVAL);
	ck_assert_int_eq(crypt_keyring_new("", &kr, &e), COF_EINVAL);
}
END_TEST

START_TEST(token_format)
{
	ck_assert_int_eq(crypt_init(), 0);
	char a[CRYPT_TOKEN_CHARS + 1], b[CRYPT_TOKEN_CHARS + 1], id[24];
	crypt_token_new(a);
	crypt_token_new(b);
	ck_assert_uint_eq(strlen(a), CRYPT_TOKEN_CHARS);
	ck_assert_int_eq(strncmp(a, "coffer_", 7), 0);
	ck_assert_str_ne(a, b);
	ck_assert(crypt_token_well_formed(a));
	/* one changed character anywhere fails the checksum (or the alphabet) */
	for (int i = 7; i < CRYPT_TOKEN_CHARS; i++) {
		char c = a[i];
		a[i] = c == 'A' ? 'B' : 'A';
		ck_assert_msg(!crypt_token_well_formed(a), "position %d", i);
		a[i] = c;
	}
	ck_assert(!crypt_token_well_formed("coffer_short"));
	ck_assert(!crypt_token_well_formed(NULL));
	char wrong_prefix[CRYPT_TOKEN_CHARS + 1];
	memcpy(wrong_prefix, a, sizeof(wrong_prefix));
	wrong_prefix[0] = 'k';
	ck_assert(!crypt_token_well_formed(wrong_prefix));
	crypt_token_id(id);
	ck_assert_uint_eq(strlen(id), 20);
	ck_assert_int_eq(strncmp(id, "tok_", 4), 0);
	/* the keyed hash depends on the key and the token */
	struct crypt_keyring *k1 = keyring_with_term(11, 1), *k2 = keyring_with_term(12, 1);
	uint8_t w1[CRYPT_WRAPPED_KEY_BYTES], w2[CRYPT_WRAPPED_KEY_BYTES];
	struct cof_err e = {0};
	uint8_t h1[CRYPT_TOKEN_HASH_BYTES], h1b[CRYPT_TOKEN_HASH_BYTES], h2[CRYPT_TOKEN_HASH_BYTES];
	ck_assert_int_ne(crypt_token_hash(k1, a, h1, &e), 0); /* no key loaded yet */
	ck_assert_int_eq(crypt_token_key_new(k1, w1, &e), 0);
	ck_assert_int_eq(crypt_token_key_set(k1, w1, sizeof(w1), &e), 0);
	ck_assert_int_eq(crypt_token_key_new(k2, w2, &e), 0);
	ck_assert_int_eq(crypt_token_key_set(k2, w2, sizeof(w2), &e), 0);
	ck_assert_int_ne(crypt_token_key_set(k2, w1, sizeof(w1), &e), 0); /* wrong root key */
	ck_assert_int_eq(crypt_token_hash(k1, a, h1, &e), 0);
	ck_assert_int_eq(crypt_token_hash(k1, a, h1b, &e), 0);
	ck_assert_int_eq(crypt_token_hash(k2, a, h2, &e), 0);
	ck_assert(crypt_equal(h1, h1b, sizeof(h1)));
	ck_assert(!crypt_equal(h1, h2, sizeof(h1)));
	ck_assert_int_eq(crypt_token_hash(k1, b, h1b, &e), 0);
	ck_assert(!crypt_equal(h1, h1b, sizeof(h1)));
	/* root-key replacement: the token key re-wrapped for k2's root opens there */
	uint8_t moved[CRYPT_WRAPPED_KEY_BYTES];
	ck_assert_int_eq(crypt_token_key_rewrap(k1, k2, moved, &e), 0);
	ck_assert_int_eq(crypt_token_key_set(k2, moved, sizeof(moved), &e), 0);
	ck_assert_int_eq(crypt_token_hash(k2, a, h2, &e), 0);
	ck_assert(crypt_equal(h1, h2, sizeof(h1)));
	crypt_keyring_free(k1);
	crypt_keyring_free(k2);
}
END_TEST

START_TEST(term_rewrap_to_new_root)
{
	struct crypt_keyring *old = keyring_with_term(13, 1), *next = keyring_with_term(14, 9);
	uint8_t *blob;
	size_t len;
	seal(old, &ID, &blob, &len);
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	struct cof_err e = {0};
	ck_assert_int_eq(crypt_keyring_rewrap_term(old, 1, next, wrapped, &e), 0);
	ck_assert_int_ne(crypt_keyring_rewrap_term(old, 5, next, wrapped, &e), 0);
	/* a fresh keyring with the new root key opens term 1 and the old value */
	ck_assert_int_eq(crypt_keyring_rewrap_term(old, 1, next, wrapped, &e), 0);
	uint8_t root[CRYPT_ROOT_KEY_BYTES];
	memset(root, 14, sizeof(root));
	struct crypt_keyring *fresh = NULL;
	ck_assert_int_eq(crypt_keyring_new_from_key(root, &fresh, &e), 0);
	ck_assert_int_eq(crypt_keyring_add(fresh, 1, wrapped, sizeof(wrapped), true, &e), 0);
	ck_assert(crypt_keyring_has_term(fresh, 1));
	ck_assert(!crypt_keyring_has_term(fresh, 2));
	ck_assert_int_eq(try_open(fresh, &ID, blob, len), 0);
	free(blob);
	crypt_keyring_free(old);
	crypt_keyring_free(next);
	crypt_keyring_free(fresh);
}
END_TEST

/* A kept answer opens for its own associated data under its own process's key, and for nothing
 * else: not one bit changed, not cut short, not another identity, not another keyring made from the
 * same root key (another process). */
START_TEST(kept_answers_are_bound_to_their_state_and_process)
{
	struct crypt_keyring *kr = keyring_with_term(3, 1), *other = keyring_with_term(3, 1);
	const uint8_t ad[] = "coffer.answer.v1:7:0:2:12:50", ad2[] = "coffer.answer.v1:7:0:2:13:50";
	size_t len = strlen(PLAIN), blob_len = len + CRYPT_ANSWER_OVERHEAD;
	uint8_t *blob = malloc(blob_len), *plain = NULL;
	size_t plen = 0;
	struct cof_err e = {0};
	ck_assert_int_eq(crypt_answer_seal(kr, ad, sizeof(ad), (const uint8_t *)PLAIN, len, blob),
	                 0);
	ck_assert(memmem(blob, blob_len, PLAIN, len) == NULL);
	ck_assert_int_eq(crypt_answer_open(kr, ad, sizeof(ad), blob, blob_len, &plain, &plen, &e),
	                 0);
	ck_assert_uint_eq(plen, len);
	ck_assert_mem_eq(plain, PLAIN, len);
	crypt_free_plain((char *)plain, plen);
	ck_assert_int_eq(crypt_answer_open(kr, ad2, sizeof(ad2), blob, blob_len, &plain, &plen, &e),
	                 COF_ETAMPER);
	ck_assert_ptr_null(plain);
	ck_assert_int_eq(
	        crypt_answer_open(other, ad, sizeof(ad), blob, blob_len, &plain, &plen, &e),
	        COF_ETAMPER);
	ck_assert_int_eq(
	        crypt_answer_open(kr, ad, sizeof(ad), blob, blob_len - 1, &plain, &plen, &e),
	        COF_ETAMPER);
	ck_assert_int_eq(crypt_answer_open(kr, ad, sizeof(ad), blob, 3, &plain, &plen, &e),
	                 COF_ETAMPER);
	for (size_t bit = 0; bit < blob_len * 8; bit++) {
		blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ck_assert_int_eq(
		        crypt_answer_open(kr, ad, sizeof(ad), blob, blob_len, &plain, &plen, &e),
		        COF_ETAMPER);
		blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	ck_assert(strstr(e.msg, PLAIN) == NULL);
	free(blob);
	crypt_keyring_free(kr);
	crypt_keyring_free(other);
}
END_TEST

TCase *tcase_crypt(void)
{
	TCase *tc = tcase_create("crypt");
	tcase_set_timeout(tc, 60);
	test_add(tc, seal_open_round_trip);
	test_add(tc, tamper_every_bit);
	test_add(tc, tamper_truncated_and_extended);
	test_add(tc, tamper_swapped_identity);
	test_add(tc, wrong_key);
	test_add(tc, terms_rotate);
	test_add(tc, root_key_files);
	test_add(tc, token_format);
	test_add(tc, term_rewrap_to_new_root);
	test_add(tc, kept_answers_are_bound_to_their_state_and_process);
	return tc;
}
