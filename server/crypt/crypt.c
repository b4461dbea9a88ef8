/* crypt.c - keyring and sealed values over libsodium (see crypt.h). */
#include "crypt.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "coffer_limits.h"

struct term_key {
	int32_t term; /* term number */
	uint8_t *key; /* crypto_aead_xchacha20poly1305_ietf_KEYBYTES in sodium_malloc memory */
};

struct crypt_keyring {
	uint8_t *root;          /* root key, sodium_malloc'd, read-only */
	uint8_t *token_key;     /* HMAC key of token secrets, sodium_malloc'd, or NULL */
	struct term_key *terms; /* data keys */
	size_t n_terms;         /* entries in terms */
	int32_t active;         /* term used for new seals */
	pthread_rwlock_t lock;  /* guards terms and active */
	uint8_t *answer_key; /* this process's key for kept answers, sodium_malloc'd, read-only */
};

int crypt_init(void)
{
	return sodium_init() < 0 ? COF_EINTERNAL : 0;
}

void crypt_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		sodium_memzero(p, n);
}

bool crypt_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

int crypt_keyring_new_from_key(const uint8_t key[CRYPT_ROOT_KEY_BYTES], struct crypt_keyring **out,
                               struct cof_err *e)
{
	*out = NULL;
	struct crypt_keyring *kr = calloc(1, sizeof(*kr));
	if (kr == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	kr->root = sodium_malloc(CRYPT_ROOT_KEY_BYTES);
	if (kr->root == NULL) {
		free(kr);
		return cof_err_set(e, COF_EINTERNAL,
		                   "cannot allocate protected memory for the root key");
	}
	memcpy(kr->root, key, CRYPT_ROOT_KEY_BYTES);
	sodium_mprotect_readonly(kr->root);
	/* Random for every process and never written anywhere: what it sealed is unreadable once
	 * the process is gone. */
	kr->answer_key = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
	if (kr->answer_key == NULL) {
		sodium_free(kr->root);
		free(kr);
		return cof_err_set(e, COF_EINTERNAL,
		                   "cannot allocate protected memory for the answer key");
	}
	crypto_aead_xchacha20poly1305_ietf_keygen(kr->answer_key);
	sodium_mprotect_readonly(kr->answer_key);
	pthread_rwlock_init(&kr->lock, NULL);
	*out = kr;
	return 0;
}

/* The root key file's bytes raw[0..n) as a key: exactly 32 bytes (raw), or exactly 64 hex
 * digits with at most one line end. 32 bytes that are all hex digits are refused: that is a
 * 128-bit key written as hex, not a raw key. */
static bool parse_root_key(const uint8_t *raw, size_t n, uint8_t *key)
{
	size_t hex = 0;
	while (hex < n && isxdigit(raw[hex]))
		hex++;
	if (n == CRYPT_ROOT_KEY_BYTES)
		return hex < n && (memcpy(key, raw, n), true);
	size_t end = n;
	if (end > 0 && raw[end - 1] == '\n')
		end--;
	if (end > 0 && raw[end - 1] == '\r')
		end--;
	size_t bin_len = 0;
	return end == 2 * CRYPT_ROOT_KEY_BYTES && hex == end &&
	       sodium_hex2bin(key, CRYPT_ROOT_KEY_BYTES, (const char *)raw, end, NULL, &bin_len,
	                      NULL) == 0 &&
	       bin_len == CRYPT_ROOT_KEY_BYTES;
}

int crypt_keyring_new(const char *path, struct crypt_keyring **out, struct cof_err *e)
{
	*out = NULL;
	if (path == NULL || *path == '\0')
		return cof_err_set(e, COF_EINVAL,
		                   "no root key file configured (COFFER_ROOT_KEY_FILE)");
	/* read(2) straight into locked memory: no stdio buffer ever holds the key. */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cof_err_set(e, COF_EINVAL, "cannot read the root key file %s: %s", path,
		                   strerror(errno));
	enum { ROOM = 2 * CRYPT_ROOT_KEY_BYTES + 3 };
	uint8_t *raw = sodium_malloc(ROOM);
	uint8_t *key = sodium_malloc(CRYPT_ROOT_KEY_BYTES);
	size_t n = 0;
	int rc = 0;
	if (raw == NULL || key == NULL) {
		rc = cof_err_set(e, COF_EINTERNAL,
		                 "cannot allocate protected memory for the root key");
		goto out;
	}
	for (ssize_t got; n < ROOM && (got = read(fd, raw + n, ROOM - n)) != 0; n += (size_t)got) {
		if (got < 0 && errno == EINTR) {
			got = 0;
			continue;
		}
		if (got < 0) {
			rc = cof_err_set(e, COF_EINVAL, "cannot read the root key file %s: %s",
			                 path, strerror(errno));
			goto out;
		}
	}
	if (n == ROOM || !parse_root_key(raw, n, key)) {
		rc = cof_err_set(e, COF_EINVAL,
		                 "the root key file %s must hold exactly 32 raw bytes or 64 hex "
		                 "digits",
		                 path);
		goto out;
	}
	rc = crypt_keyring_new_from_key(key, out, e);
out:
	close(fd);
	sodium_free(raw);
	sodium_free(key);
	return rc;
}

void crypt_keyring_free(struct crypt_keyring *kr)
{
	if (kr == NULL)
		return;
	for (size_t i = 0; i < kr->n_terms; i++)
		sodium_free(kr->terms[i].key);
	free(kr->terms);
	if (kr->token_key)
		sodium_free(kr->token_key);
	sodium_free(kr->root);
	sodium_free(kr->answer_key);
	pthread_rwlock_destroy(&kr->lock);
	free(kr);
}

static void wrap_ad(int32_t term, char *ad, size_t cap)
{
	snprintf(ad, cap, "coffer.keyring.v1:%d", (int)term);
}

int crypt_keyring_wrap_new(struct crypt_keyring *kr, int32_t term, uint8_t *out, struct cof_err *e)
{
	uint8_t *dk = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
	if (dk == NULL)
		return cof_err_set(e, COF_EINTERNAL, "cannot allocate protected memory");
	crypto_aead_xchacha20poly1305_ietf_keygen(dk);
	char ad[48];
	wrap_ad(term, ad, sizeof(ad));
	randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 24, &clen, dk, 32, (const uint8_t *)ad,
	                                           strlen(ad), NULL, out, kr->root);
	sodium_free(dk);
	return 0;
}

int crypt_keyring_add(struct crypt_keyring *kr, int32_t term, const uint8_t *wrapped, size_t len,
                      bool active, struct cof_err *e)
{
	if (len != CRYPT_WRAPPED_KEY_BYTES)
		return cof_err_set(e, COF_EINTERNAL, "keyring term %d is damaged (wrong length)",
		                   (int)term);
	uint8_t *dk = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
	if (dk == NULL)
		return cof_err_set(e, COF_EINTERNAL, "cannot allocate protected memory");
	char ad[48];
	wrap_ad(term, ad, sizeof(ad));
	unsigned long long mlen = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dk, &mlen, NULL, wrapped + 24, len - 24,
	                                               (const uint8_t *)ad, strlen(ad), wrapped,
	                                               kr->root) != 0) {
		sodium_free(dk);
		return cof_err_set(
		        e, COF_EINTERNAL,
		        "the root key does not open keyring term %d: wrong root key file?",
		        (int)term);
	}
	sodium_mprotect_readonly(dk);
	pthread_rwlock_wrlock(&kr->lock);
	int rc = 0;
	size_t i;
	for (i = 0; i < kr->n_terms && kr->terms[i].term != term; i++)
		;
	if (i < kr->n_terms) {
		sodium_free(dk); /* already known */
	} else if (kr->n_terms >= LIMIT_KEY_TERMS) {
		sodium_free(dk);
		rc = cof_err_set(e, COF_EINTERNAL, "too many keyring terms");
	} else {
		struct term_key *t = realloc(kr->terms, sizeof(*t) * (kr->n_terms + 1));
		if (t == NULL) {
			sodium_free(dk);
			rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		} else {
			kr->terms = t;
			kr->terms[kr->n_terms++] = (struct term_key){term, dk};
		}
	}
	if (rc == 0 && active)
		kr->active = term;
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

int32_t crypt_keyring_active_term(struct crypt_keyring *kr)
{
	pthread_rwlock_rdlock(&kr->lock);
	int32_t t = kr->active;
	pthread_rwlock_unlock(&kr->lock);
	return t;
}

/* Caller holds the lock. */
static const uint8_t *key_of(struct crypt_keyring *kr, int32_t term)
{
	for (size_t i = 0; i < kr->n_terms; i++)
		if (kr->terms[i].term == term)
			return kr->terms[i].key;
	return NULL;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* Associated data: a label, the blob header, and the identity. */
#define AD_BYTES (16 + 5 + 8 * 4 + 4)
static void value_ad(const struct crypt_value_id *id, const uint8_t *header5, uint8_t ad[AD_BYTES])
{
	memcpy(ad, "coffer.value.v1\0", 16);
	memcpy(ad + 16, header5, 5);
	put_be64(ad + 21, (uint64_t)id->project_id);
	put_be64(ad + 29, (uint64_t)id->secret_id);
	put_be64(ad + 37, (uint64_t)id->environment_id);
	put_be64(ad + 45, (uint64_t)id->valid_from);
	put_be32(ad + 53, (uint32_t)id->version);
}

int crypt_seal(struct crypt_keyring *kr, const struct crypt_value_id *id, const uint8_t *plain,
               size_t len, uint8_t **blob, size_t *blob_len, struct cof_err *e)
{
	*blob = NULL;
	size_t total = CRYPT_HEADER_BYTES + len + CRYPT_TAG_BYTES;
	uint8_t *out = malloc(total);
	if (out == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	pthread_rwlock_rdlock(&kr->lock);
	int32_t term = kr->active;
	const uint8_t *key = key_of(kr, term);
	if (key == NULL) {
		pthread_rwlock_unlock(&kr->lock);
		free(out);
		return cof_err_set(e, COF_EINTERNAL, "the keyring has no active term");
	}
	out[0] = CRYPT_FORMAT_V1;
	put_be32(out + 1, (uint32_t)term);
	randombytes_buf(out + 5, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	uint8_t ad[AD_BYTES];
	value_ad(id, out, ad);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + CRYPT_HEADER_BYTES, &clen, plain, len, ad,
	                                           sizeof(ad), NULL, out + 5, key);
	pthread_rwlock_unlock(&kr->lock);
	*blob = out;
	*blob_len = total;
	return 0;
}

int32_t crypt_blob_term(const uint8_t *blob, size_t len)
{
	if (len < CRYPT_HEADER_BYTES + CRYPT_TAG_BYTES || blob[0] != CRYPT_FORMAT_V1)
		return 0;
	return (int32_t)(((uint32_t)blob[1] << 24) | ((uint32_t)blob[2] << 16) |
	                 ((uint32_t)blob[3] << 8) | blob[4]);
}

int crypt_open(struct crypt_keyring *kr, const struct crypt_value_id *id, const uint8_t *blob,
               size_t blob_len, char **plain, size_t *len, struct cof_err *e)
{
	return crypt_open_with(kr, id, blob, blob_len, NULL, NULL, plain, len, e);
}

int crypt_open_with(struct crypt_keyring *kr, const struct crypt_value_id *id, const uint8_t *blob,
                    size_t blob_len, void *(*alloc)(void *arg, size_t n), void *alloc_arg,
                    char **plain, size_t *len, struct cof_err *e)
{
	*plain = NULL;
	*len = 0;
	int32_t term = crypt_blob_term(blob, blob_len);
	if (term == 0)
		return cof_err_set(e, COF_ETAMPER, "malformed ciphertext");
	size_t mlen_max = blob_len - CRYPT_HEADER_BYTES - CRYPT_TAG_BYTES;
	char *out = alloc ? alloc(alloc_arg, mlen_max + 1) : malloc(mlen_max + 1);
	if (out == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	uint8_t ad[AD_BYTES];
	value_ad(id, blob, ad);
	pthread_rwlock_rdlock(&kr->lock);
	const uint8_t *key = key_of(kr, term);
	unsigned long long mlen = 0;
	int rc = key == NULL
	                 ? -1
	                 : crypto_aead_xchacha20poly1305_ietf_decrypt(
	                           (uint8_t *)out, &mlen, NULL, blob + CRYPT_HEADER_BYTES,
	                           blob_len - CRYPT_HEADER_BYTES, ad, sizeof(ad), blob + 5, key);
	pthread_rwlock_unlock(&kr->lock);
	if (rc != 0) {
		if (alloc)
			sodium_memzero(out, mlen_max + 1);
		else
			crypt_free_plain(out, mlen_max + 1);
		return cof_err_set(e, COF_ETAMPER,
		                   key ? "ciphertext failed authentication"
		                       : "ciphertext names an unknown keyring term");
	}
	out[mlen] = '\0';
	*plain = out;
	*len = (size_t)mlen;
	return 0;
}

/* ---- answers kept by this process ---- */

int crypt_answer_seal(struct crypt_keyring *kr, const uint8_t *ad, size_t ad_len,
                      const uint8_t *plain, size_t len, uint8_t *blob)
{
	randombytes_buf(blob, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	unsigned long long clen = 0;
	return crypto_aead_xchacha20poly1305_ietf_encrypt(
	               blob + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, plain, len, ad,
	               ad_len, NULL, blob, kr->answer_key) == 0
	               ? 0
	               : COF_EINTERNAL;
}

int crypt_answer_open(struct crypt_keyring *kr, const uint8_t *ad, size_t ad_len,
                      const uint8_t *blob, size_t blob_len, uint8_t **plain, size_t *len,
                      struct cof_err *e)
{
	*plain = NULL;
	*len = 0;
	if (blob_len < CRYPT_ANSWER_OVERHEAD)
		return cof_err_set(e, COF_ETAMPER, "malformed kept answer");
	size_t mlen_max = blob_len - CRYPT_ANSWER_OVERHEAD;
	uint8_t *out = malloc(mlen_max ? mlen_max : 1);
	if (out == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	unsigned long long mlen = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	            out, &mlen, NULL, blob + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	            blob_len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, ad, ad_len, blob,
	            kr->answer_key) != 0) {
		crypt_free_plain((char *)out, mlen_max);
		return cof_err_set(e, COF_ETAMPER, "a kept answer failed authentication");
	}
	*plain = out;
	*len = (size_t)mlen;
	return 0;
}

void crypt_free_plain(char *plain, size_t len)
{
	if (plain == NULL)
		return;
	sodium_memzero(plain, len);
	free(plain);
}

/* ---- tokens ---- */

static const char BASE62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* CRC-32 (IEEE), a table per byte: every authenticated call checks a token's checksum. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (uint32_t) - (int32_t)(c & 1));
		crc_table[b] = c;
	}
}

static uint32_t crc32(const char *s, size_t n)
{
	pthread_once(&crc_once, crc_init);
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++)
		c = (c >> 8) ^ crc_table[(c ^ (uint8_t)s[i]) & 0xFF];
	return ~c;
}

static void checksum6(const char *s, size_t n, char out[6])
{
	uint32_t c = crc32(s, n);
	for (int i = 5; i >= 0; i--) {
		out[i] = BASE62[c % 62];
		c /= 62;
	}
}

void crypt_token_new(char *out)
{
	memcpy(out, CRYPT_TOKEN_PREFIX, 7);
	for (int i = 0; i < 43; i++)
		out[7 + i] = BASE62[randombytes_uniform(62)];
	checksum6(out, 50, out + 50);
	out[CRYPT_TOKEN_CHARS] = '\0';
}

void crypt_token_id(char *out)
{
	uint8_t raw[8];
	randombytes_buf(raw, sizeof(raw));
	memcpy(out, "tok_", 4);
	sodium_bin2hex(out + 4, 17, raw, sizeof(raw));
}

bool crypt_token_well_formed(const char *token)
{
	if (token == NULL || strlen(token) != CRYPT_TOKEN_CHARS ||
	    strncmp(token, CRYPT_TOKEN_PREFIX, 7))
		return false;
	for (int i = 7; i < CRYPT_TOKEN_CHARS; i++)
		if (strchr(BASE62, token[i]) == NULL || token[i] == '\0')
			return false;
	char sum[6];
	checksum6(token, 50, sum);
	return memcmp(sum, token + 50, 6) == 0;
}

#define TOKEN_KEY_AD "coffer.token-key.v1"

int crypt_token_key_new(struct crypt_keyring *kr, uint8_t *out, struct cof_err *e)
{
	uint8_t *k = sodium_malloc(32);
	if (k == NULL)
		return cof_err_set(e, COF_EINTERNAL, "cannot allocate protected memory");
	randombytes_buf(k, 32);
	randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 24, &clen, k, 32,
	                                           (const uint8_t *)TOKEN_KEY_AD,
	                                           strlen(TOKEN_KEY_AD), NULL, out, kr->root);
	sodium_free(k);
	return 0;
}

int crypt_token_key_set(struct crypt_keyring *kr, const uint8_t *wrapped, size_t len,
                        struct cof_err *e)
{
	if (len != CRYPT_WRAPPED_KEY_BYTES)
		return cof_err_set(e, COF_EINTERNAL, "the token key is damaged (wrong length)");
	uint8_t *k = sodium_malloc(32);
	if (k == NULL)
		return cof_err_set(e, COF_EINTERNAL, "cannot allocate protected memory");
	unsigned long long mlen = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	            k, &mlen, NULL, wrapped + 24, len - 24, (const uint8_t *)TOKEN_KEY_AD,
	            strlen(TOKEN_KEY_AD), wrapped, kr->root) != 0) {
		sodium_free(k);
		return cof_err_set(
		        e, COF_EINTERNAL,
		        "the root key does not open the token key: wrong root key file?");
	}
	sodium_mprotect_readonly(k);
	pthread_rwlock_wrlock(&kr->lock);
	if (kr->token_key)
		sodium_free(kr->token_key);
	kr->token_key = k;
	pthread_rwlock_unlock(&kr->lock);
	return 0;
}

int crypt_token_hash(struct crypt_keyring *kr, const char *token,
                     uint8_t out[CRYPT_TOKEN_HASH_BYTES], struct cof_err *e)
{
	pthread_rwlock_rdlock(&kr->lock);
	int rc = 0;
	if (kr->token_key == NULL)
		rc = cof_err_set(e, COF_EINTERNAL, "no token key loaded");
	else
		crypto_auth_hmacsha256(out, (const uint8_t *)token, strlen(token), kr->token_key);
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

bool crypt_keyring_has_term(struct crypt_keyring *kr, int32_t term)
{
	pthread_rwlock_rdlock(&kr->lock);
	bool has = key_of(kr, term) != NULL;
	pthread_rwlock_unlock(&kr->lock);
	return has;
}

/* Wraps 32 key bytes under to's root key with associated data ad. */
static void wrap_with(struct crypt_keyring *to, const uint8_t *key, const char *ad, uint8_t *out)
{
	randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 24, &clen, key, 32, (const uint8_t *)ad,
	                                           strlen(ad), NULL, out, to->root);
}

int crypt_keyring_rewrap_term(struct crypt_keyring *from, int32_t term, struct crypt_keyring *to,
                              uint8_t *out, struct cof_err *e)
{
	char ad[48];
	wrap_ad(term, ad, sizeof(ad));
	pthread_rwlock_rdlock(&from->lock);
	const uint8_t *key = key_of(from, term);
	if (key)
		wrap_with(to, key, ad, out);
	pthread_rwlock_unlock(&from->lock);
	return key ? 0 : cof_err_set(e, COF_EINTERNAL, "keyring term %d is not loaded", (int)term);
}

int crypt_token_key_rewrap(struct crypt_keyring *from, struct crypt_keyring *to, uint8_t *out,
                           struct cof_err *e)
{
	pthread_rwlock_rdlock(&from->lock);
	const uint8_t *key = from->token_key;
	if (key)
		wrap_with(to, key, TOKEN_KEY_AD, out);
	pthread_rwlock_unlock(&from->lock);
	return key ? 0 : cof_err_set(e, COF_EINTERNAL, "no token key loaded");
}
