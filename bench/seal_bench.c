/*
 * seal_bench.c (coffer-bench-seal) - what opening a resolve's values costs, by construction.
 *
 * A warm resolve of N values of B bytes either opens each value on its own (what the cache held
 * before: every value sealed under its identity) or opens one blob holding the whole answer. Each
 * is measured with XChaCha20-Poly1305 (the at-rest format) and with AES-256-GCM (libsodium's
 * AES-NI code, with its key schedule computed once), on this CPU, one thread. Prints figures;
 * asserts nothing.
 *
 *   coffer-bench-seal [--values N] [--bytes B] [--rounds R]
 */
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define AD_BYTES 40 /* about what a value's identity takes as associated data */

enum aead { XCHACHA, AESGCM };

struct sealed {
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned char *c;
	unsigned long long clen;
};

static void seal(enum aead a, const unsigned char *key, const crypto_aead_aes256gcm_state *st,
                 const unsigned char *m, size_t len, const unsigned char *ad, struct sealed *out)
{
	randombytes_buf(out->nonce, sizeof(out->nonce));
	out->c = malloc(len + 16);
	if (a == XCHACHA)
		crypto_aead_xchacha20poly1305_ietf_encrypt(out->c, &out->clen, m, len, ad, AD_BYTES,
		                                           NULL, out->nonce, key);
	else
		crypto_aead_aes256gcm_encrypt_afternm(out->c, &out->clen, m, len, ad, AD_BYTES,
		                                      NULL, out->nonce, st);
}

static int open1(enum aead a, const unsigned char *key, const crypto_aead_aes256gcm_state *st,
                 const struct sealed *s, const unsigned char *ad, unsigned char *m)
{
	unsigned long long mlen;
	if (a == XCHACHA)
		return crypto_aead_xchacha20poly1305_ietf_decrypt(m, &mlen, NULL, s->c, s->clen, ad,
		                                                  AD_BYTES, s->nonce, key);
	return crypto_aead_aes256gcm_decrypt_afternm(m, &mlen, NULL, s->c, s->clen, ad, AD_BYTES,
	                                             s->nonce, st);
}

/* Microseconds per resolve: n values of b bytes each opened alone (blob false) or one blob of
 * n * (b + 8) bytes (names and framing beside the values). */
static double measure(enum aead a, size_t n, size_t b, bool blob, int rounds)
{
	unsigned char key[32], ad[AD_BYTES];
	crypto_aead_aes256gcm_state *st = sodium_malloc(sizeof(*st));
	randombytes_buf(key, sizeof(key));
	randombytes_buf(ad, sizeof(ad));
	crypto_aead_aes256gcm_beforenm(st, key);
	size_t len = blob ? n * (b + 8) : b, count = blob ? 1 : n;
	unsigned char *m = malloc(len), *out = malloc(len + 16);
	randombytes_buf(m, len);
	struct sealed *s = calloc(count, sizeof(*s));
	for (size_t i = 0; i < count; i++)
		seal(a, key, st, m, len, ad, &s[i]);
	int bad = 0;
	double t0 = now_s();
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < count; i++)
			bad |= open1(a, key, st, &s[i], ad, out);
	double us = (now_s() - t0) * 1e6 / rounds;
	if (bad)
		fprintf(stderr, "seal-bench: an opening failed\n");
	for (size_t i = 0; i < count; i++)
		free(s[i].c);
	free(s);
	free(m);
	free(out);
	sodium_free(st);
	return us;
}

int main(int argc, char **argv)
{
	size_t n = 50, b = 64;
	int rounds = 20000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--values") == 0)
			n = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--bytes") == 0)
			b = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = atoi(argv[i + 1]);
	}
	if (sodium_init() < 0)
		return 1;
	bool aes = crypto_aead_aes256gcm_is_available();
	printf("seal-bench: %zu values of %zu bytes; AES-NI %s\n", n, b, aes ? "yes" : "no");
	double x1 = measure(XCHACHA, n, b, false, rounds);
	double xb = measure(XCHACHA, n, b, true, rounds);
	double a1 = aes ? measure(AESGCM, n, b, false, rounds) : 0;
	double ab = aes ? measure(AESGCM, n, b, true, rounds) : 0;
	printf("  XChaCha20-Poly1305, each value opened   %7.2f us a resolve\n", x1);
	printf("  XChaCha20-Poly1305, one blob            %7.2f us a resolve\n", xb);
	if (aes) {
		printf("  AES-256-GCM (AES-NI), each value opened %7.2f us a resolve\n", a1);
		printf("  AES-256-GCM (AES-NI), one blob          %7.2f us a resolve\n", ab);
	}
	printf("RESULT label=seal xchacha_each_us=%.2f xchacha_blob_us=%.2f aesgcm_each_us=%.2f "
	       "aesgcm_blob_us=%.2f\n",
	       x1, xb, a1, ab);
	return 0;
}
