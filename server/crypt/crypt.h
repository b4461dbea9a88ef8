/*
 * crypt.h - encryption at rest: the only room that touches libsodium.
 *
 * The root key (32 bytes, from a file) wraps the data keys of the keyring; each data key has a
 * term number and one term is active. A value is sealed with XChaCha20-Poly1305 under the active
 * term's key, with associated data that binds it to its identity (project, secret, environment,
 * version and the revision it was written at), as
 *   format (1 byte) | term (4 bytes, big-endian) | nonce (24 bytes) | ciphertext + tag.
 * A blob moved to another identity, altered by one bit, or cut short fails to open.
 * Keys live in sodium_malloc memory and never leave this room.
 */
#ifndef COFFER_CRYPT_H
#define COFFER_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define CRYPT_ROOT_KEY_BYTES    32
#define CRYPT_FORMAT_V1         1
#define CRYPT_HEADER_BYTES      (1 + 4 + 24)
#define CRYPT_TAG_BYTES         16
#define CRYPT_WRAPPED_KEY_BYTES (24 + 32 + 16)

struct crypt_keyring;

/* What a sealed value is bound to. environment_id 0 and version 0: the project default. */
struct crypt_value_id {
	int64_t project_id;     /* projects.id */
	int64_t secret_id;      /* secrets.id */
	int64_t environment_id; /* environments.id, or 0 */
	int32_t version;        /* 0 default, 1 draft, 2 live */
	int64_t valid_from;     /* the revision that wrote it */
};

/* Initialises libsodium; call once before anything else here. 0 or COF_EINTERNAL. */
int crypt_init(void) __attribute__((warn_unused_result));
/* Overwrites n bytes at p with zeros in a way the compiler keeps. NULL-safe. */
void crypt_wipe(void *p, size_t n);
/* Constant-time equality of two buffers of n bytes. */
bool crypt_equal(const void *a, const void *b, size_t n);

/* Reads the root key from path (32 raw bytes, or 64 hex digits and optional newline) into a new
 * keyring with no terms. */
int crypt_keyring_new(const char *root_key_path, struct crypt_keyring **out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* As crypt_keyring_new, with the root key given as bytes (tests). */
int crypt_keyring_new_from_key(const uint8_t key[CRYPT_ROOT_KEY_BYTES], struct crypt_keyring **out,
                               struct cof_err *e) __attribute__((warn_unused_result));
void crypt_keyring_free(struct crypt_keyring *kr);
/* Makes a new random data key for `term` and returns it wrapped by the root key (out must hold
 * CRYPT_WRAPPED_KEY_BYTES). The key is not added: add it with crypt_keyring_add. */
int crypt_keyring_wrap_new(struct crypt_keyring *kr, int32_t term, uint8_t *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Unwraps a stored data key and adds it as `term` (active when `active`). A wrong root key fails
 * here with COF_EINTERNAL and a message that says so. */
int crypt_keyring_add(struct crypt_keyring *kr, int32_t term, const uint8_t *wrapped, size_t len,
                      bool active, struct cof_err *e) __attribute__((warn_unused_result));
/* Whether the keyring holds `term`. */
bool crypt_keyring_has_term(struct crypt_keyring *kr, int32_t term);
/* The data key of `term` wrapped by the root key of `to` (root-key replacement); out holds
 * CRYPT_WRAPPED_KEY_BYTES. */
int crypt_keyring_rewrap_term(struct crypt_keyring *from, int32_t term, struct crypt_keyring *to,
                              uint8_t *out, struct cof_err *e) __attribute__((warn_unused_result));
/* The token-hashing key of `from` wrapped by the root key of `to`. */
int crypt_token_key_rewrap(struct crypt_keyring *from, struct crypt_keyring *to, uint8_t *out,
                           struct cof_err *e) __attribute__((warn_unused_result));
/* The active term, 0 when none. */
int32_t crypt_keyring_active_term(struct crypt_keyring *kr);

/* ---- tokens ---- */

/* coffer_ + 43 base62 characters (256 bits) + 6 base62 characters of CRC-32 checksum. */
#define CRYPT_TOKEN_PREFIX     "coffer_"
#define CRYPT_TOKEN_CHARS      (7 + 43 + 6)
#define CRYPT_TOKEN_HASH_BYTES 32

/* A new bearer secret in out (at least CRYPT_TOKEN_CHARS + 1 bytes). */
void crypt_token_new(char *out);
/* A random public token id "tok_" + 16 hex digits in out (at least 21 bytes). */
void crypt_token_id(char *out);
/* Prefix, length, alphabet and checksum: true when the string could be a token. */
bool crypt_token_well_formed(const char *token);
/* Wraps a new random token-hashing key (out holds CRYPT_WRAPPED_KEY_BYTES). */
int crypt_token_key_new(struct crypt_keyring *kr, uint8_t *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Unwraps and installs the token-hashing key. */
int crypt_token_key_set(struct crypt_keyring *kr, const uint8_t *wrapped, size_t len,
                        struct cof_err *e) __attribute__((warn_unused_result));
/* HMAC-SHA256 of the token under the token-hashing key. */
int crypt_token_hash(struct crypt_keyring *kr, const char *token,
                     uint8_t out[CRYPT_TOKEN_HASH_BYTES], struct cof_err *e)
        __attribute__((warn_unused_result));

/* Seals plain[0..len) for id under the active term. *blob is malloc'd (free with free()). */
int crypt_seal(struct crypt_keyring *kr, const struct crypt_value_id *id, const uint8_t *plain,
               size_t len, uint8_t **blob, size_t *blob_len, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Opens a blob for id. On success *plain is a malloc'd NUL-terminated copy of *len bytes; free it
 * with crypt_free_plain. Any failure is COF_ETAMPER. */
int crypt_open(struct crypt_keyring *kr, const struct crypt_value_id *id, const uint8_t *blob,
               size_t blob_len, char **plain, size_t *len, struct cof_err *e)
        __attribute__((warn_unused_result));
/* crypt_open into memory from alloc(alloc_arg, n) (NULL: malloc), which its owner wipes and frees
 * (a call's arena): no copy between the opening and the answer. */
int crypt_open_with(struct crypt_keyring *kr, const struct crypt_value_id *id, const uint8_t *blob,
                    size_t blob_len, void *(*alloc)(void *arg, size_t n), void *alloc_arg,
                    char **plain, size_t *len, struct cof_err *e)
        __attribute__((warn_unused_result));
/* The term a blob was sealed under, or 0 when it is not a blob. */
int32_t crypt_blob_term(const uint8_t *blob, size_t len);
/* ---- answers kept by this process ----
 * A replica keeps, beside the sealed rows it caches, whole answers it has already built, sealed
 * under a key of its own: random at start-up, in sodium_malloc memory (locked, guarded, left out
 * of core dumps), read-only, never stored. Opening one answer is one AEAD over a few kilobytes
 * instead of one per value (docs/performance.md). */
#define CRYPT_ANSWER_OVERHEAD (24 + 16) /* nonce + tag */

/* Seals plain[0..len) with associated data ad into blob (len + CRYPT_ANSWER_OVERHEAD bytes). */
int crypt_answer_seal(struct crypt_keyring *kr, const uint8_t *ad, size_t ad_len,
                      const uint8_t *plain, size_t len, uint8_t *blob)
        __attribute__((warn_unused_result));
/* Opens a kept answer sealed with ad: *plain is malloc'd (*len bytes); the caller wipes and frees
 * it. Any failure is COF_ETAMPER. */
int crypt_answer_open(struct crypt_keyring *kr, const uint8_t *ad, size_t ad_len,
                      const uint8_t *blob, size_t blob_len, uint8_t **plain, size_t *len,
                      struct cof_err *e) __attribute__((warn_unused_result));

/* Wipes and frees a plaintext from crypt_open. NULL-safe. */
void crypt_free_plain(char *plain, size_t len);

#endif
