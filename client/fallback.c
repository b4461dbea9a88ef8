/*
 * fallback.c - encrypted fallback snapshots: what a runtime starts from when cofferd cannot be
 * reached (see coffer/client.h, coffer_resolve_fallback; the format is
 * docs/client/coffer_resolve_fallback.md).
 *
 * The file holds one snapshot sealed with XChaCha20-Poly1305. Its key comes from the token
 * (BLAKE2b keyed by the token, salted and personalised) or from a passphrase file (Argon2id), so
 * that a snapshot made in CI opens in production. The header — key source, salt, nonce, project,
 * environment, version, revision and when it was written — is the associated data: a snapshot
 * moved to another project, environment or version, or edited anywhere, does not open. It is
 * written to a temporary file (mode 0600), synced and renamed over the old one.
 */
#include "coffer/client.h"
#include "coffer_client_internal.h"
#include "coffer_shared.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "coffer_limits.h"

#define MAGIC     "CFSNAP01"
#define MAGIC_LEN 8
#define SALT_LEN  16
#define KEY_TOKEN 1
#define KEY_PASS  2
#define MAX_FILE  (64u << 20)
#define PERSONAL  "coffer.snapshot1" /* 16 bytes: BLAKE2b's personalisation */

/* A growing byte buffer that wipes what it drops (coffer_wbuf), read as bytes. */
struct buf {
	struct coffer_wbuf w;
};

static void put(struct buf *b, const void *data, size_t n)
{
	(void)coffer_wbuf_put(&b->w, data, n); /* a failure shows in w.failed */
}

static uint8_t *bytes(const struct buf *b)
{
	return (uint8_t *)b->w.p;
}

static void put_u64(struct buf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (56 - 8 * i));
	put(b, x, 8);
}

static void put_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(b, x, 4);
}

static void put_str(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	uint8_t x[2] = {(uint8_t)(n >> 8), (uint8_t)n};
	put(b, x, 2);
	put(b, s, n);
}

static void buf_free(struct buf *b)
{
	coffer_wbuf_free(&b->w);
}

/* A reader over bytes; ok turns false when it runs out. */
struct rd {
	const uint8_t *p;
	size_t len, at;
	bool ok;
};

static const uint8_t *take(struct rd *r, size_t n)
{
	if (!r->ok || r->len - r->at < n) {
		r->ok = false;
		return NULL;
	}
	const uint8_t *p = r->p + r->at;
	r->at += n;
	return p;
}

static uint64_t get_u64(struct rd *r)
{
	const uint8_t *x = take(r, 8);
	uint64_t v = 0;
	for (int i = 0; x && i < 8; i++)
		v = v << 8 | x[i];
	return v;
}

static uint32_t get_u32(struct rd *r)
{
	const uint8_t *x = take(r, 4);
	return x ? (uint32_t)x[0] << 24 | (uint32_t)x[1] << 16 | (uint32_t)x[2] << 8 | x[3] : 0;
}

/* A length-prefixed string into out (cap bytes); false when it does not fit or is cut short. */
static bool get_str(struct rd *r, char *out, size_t cap)
{
	const uint8_t *x = take(r, 2);
	size_t n = x ? (size_t)x[0] << 8 | x[1] : 0;
	const uint8_t *s = take(r, n);
	if (s == NULL || n + 1 > cap)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return memchr(out, '\0', n) == NULL;
}

/* The key of a snapshot: from the passphrase file, or from the token. */
static int derive(const coffer_fallback *fb, const char *token, int source, const uint8_t *salt,
                  uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES], coffer_error *err)
{
	if (source == KEY_PASS) {
		if (fb->passphrase_file == NULL)
			return coffer__fail(err, COFFER_FAILED_PRECONDITION,
			                    "the fallback snapshot was sealed with a passphrase: "
			                    "give the passphrase file");
		FILE *f = fopen(fb->passphrase_file, "r");
		/* As ssh with its keys: a passphrase others may read (or write) is refused. */
		struct stat st;
		if (f && fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
			fclose(f);
			return coffer__fail(
			        err, COFFER_FAILED_PRECONDITION,
			        "the passphrase file %s may be read by others (mode %03o): "
			        "chmod 600 it (on Kubernetes, defaultMode: 0400)",
			        fb->passphrase_file, (unsigned)(st.st_mode & 0777));
		}
		char pass[1024];
		size_t n = f ? fread(pass, 1, sizeof(pass) - 1, f) : 0;
		if (f)
			fclose(f);
		while (n > 0 && (pass[n - 1] == '\n' || pass[n - 1] == '\r'))
			n--;
		if (f == NULL || n == 0) {
			sodium_memzero(pass, sizeof(pass));
			return coffer__fail(err, COFFER_INVALID_ARGUMENT,
			                    "cannot read a passphrase from %s",
			                    fb->passphrase_file);
		}
		int rc = crypto_pwhash(key, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, pass, n,
		                       salt, crypto_pwhash_OPSLIMIT_INTERACTIVE,
		                       crypto_pwhash_MEMLIMIT_INTERACTIVE,
		                       crypto_pwhash_ALG_ARGON2ID13);
		sodium_memzero(pass, sizeof(pass));
		return rc == 0 ? 0
		               : coffer__fail(err, COFFER_RESOURCE_EXHAUSTED,
		                              "not enough memory to derive the snapshot key");
	}
	if (token == NULL || *token == '\0')
		return coffer__fail(err, COFFER_FAILED_PRECONDITION,
		                    "a fallback snapshot needs a token or a passphrase file");
	crypto_generichash_blake2b_salt_personal(key, crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	                                         NULL, 0, (const uint8_t *)token, strlen(token),
	                                         salt, (const uint8_t *)PERSONAL);
	return 0;
}

/* The header (the associated data) of a snapshot. */
static void header(struct buf *b, int source, const uint8_t *salt, const uint8_t *nonce,
                   const char *project, const char *environment, int version, int64_t revision,
                   int64_t written)
{
	uint8_t src = (uint8_t)source, ver = (uint8_t)version;
	put(b, MAGIC, MAGIC_LEN);
	put(b, &src, 1);
	put(b, salt, SALT_LEN);
	put(b, nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	put_u64(b, (uint64_t)revision);
	put_u64(b, (uint64_t)written);
	put_str(b, project);
	put_str(b, environment);
	put(b, &ver, 1);
}

/* The revision marker beside a snapshot (PATH.seen): the revision of the last snapshot the server
 * answered here. A snapshot older than it is refused, so that an older file put in its place (a
 * copy kept from before a rotation or a revocation) does not open. Written after each snapshot,
 * with the server's revision (which a failover to a shorter history may lower). */
static char *marker_path(const char *path)
{
	size_t n = strlen(path) + 6;
	char *m = malloc(n);
	if (m)
		snprintf(m, n, "%s.seen", path);
	return m;
}

/* The revision the marker holds; 0 when there is none (or it does not parse). */
static int64_t marker_read(const char *path)
{
	char *m = marker_path(path);
	FILE *f = m ? fopen(m, "r") : NULL;
	long long v = 0;
	if (f == NULL || fscanf(f, "%lld", &v) != 1 || v < 0)
		v = 0;
	if (f)
		fclose(f);
	free(m);
	return (int64_t)v;
}

/* Writes the marker (atomically, mode 0600); a failure costs only the check. */
static void marker_write(const char *path, int64_t revision)
{
	char *m = marker_path(path);
	size_t n = m ? strlen(m) + 16 : 0;
	char *tmp = m ? malloc(n) : NULL;
	if (tmp) {
		snprintf(tmp, n, "%s.tmpXXXXXX", m);
		int fd = mkstemp(tmp);
		char line[32];
		int len = snprintf(line, sizeof(line), "%lld\n", (long long)revision);
		bool ok = fd >= 0 && write(fd, line, (size_t)len) == len && fsync(fd) == 0;
		if (fd >= 0 && close(fd) != 0)
			ok = false;
		if (!ok || rename(tmp, m) != 0)
			unlink(tmp);
	}
	free(tmp);
	free(m);
}

int coffer__fallback_save(const coffer_fallback *fb, const char *token, const char *project,
                          const char *environment, int version, const coffer_snapshot *snap,
                          coffer_error *err)
{
	if (sodium_init() < 0)
		return coffer__fail(err, COFFER_INTERNAL, "libsodium did not initialise");
	int source = fb->passphrase_file ? KEY_PASS : KEY_TOKEN;
	uint8_t salt[SALT_LEN], nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(nonce, sizeof(nonce));
	if (derive(fb, token, source, salt, key, err) != 0)
		return -1;
	struct buf head = {0}, plain = {0}, file = {0};
	header(&head, source, salt, nonce, project, environment, version,
	       coffer_snapshot_revision(snap), (int64_t)time(NULL));
	put_u32(&plain, (uint32_t)coffer_snapshot_count(snap));
	for (size_t i = 0; i < coffer_snapshot_count(snap); i++) {
		const char *name = coffer_snapshot_name(snap, i);
		const char *value = coffer_snapshot_get(snap, name);
		put_u32(&plain, (uint32_t)strlen(name));
		put(&plain, name, strlen(name));
		put_u32(&plain, (uint32_t)strlen(value));
		put(&plain, value, strlen(value));
	}
	int rc = 0;
	if (head.w.failed || plain.w.failed) {
		rc = coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	put(&file, bytes(&head), head.w.len);
	size_t at = file.w.len;
	uint8_t zeros[64] = {0};
	for (size_t left = plain.w.len + crypto_aead_xchacha20poly1305_ietf_ABYTES; left > 0;) {
		size_t n = left < sizeof(zeros) ? left : sizeof(zeros);
		put(&file, zeros, n);
		left -= n;
	}
	if (file.w.failed) {
		rc = coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(bytes(&file) + at, &clen, bytes(&plain),
	                                           plain.w.len, bytes(&head), head.w.len, NULL,
	                                           nonce, key);
	/* Atomically: a temporary file of our own, synced, renamed over the old one. */
	size_t plen = strlen(fb->path);
	char *tmp = malloc(plen + 16);
	if (tmp == NULL) {
		rc = coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	snprintf(tmp, plen + 16, "%s.tmpXXXXXX", fb->path);
	int fd = mkstemp(tmp); /* mode 0600 */
	bool wrote = fd >= 0 && fchmod(fd, 0600) == 0 &&
	             write(fd, file.w.p, file.w.len) == (ssize_t)file.w.len && fsync(fd) == 0;
	if (fd >= 0 && close(fd) != 0)
		wrote = false;
	if (!wrote || rename(tmp, fb->path) != 0) {
		int e = errno;
		if (fd >= 0)
			unlink(tmp);
		rc = coffer__fail(err, COFFER_INTERNAL, "cannot write the fallback snapshot %s: %s",
		                  fb->path, strerror(e));
	} else {
		marker_write(fb->path, coffer_snapshot_revision(snap));
	}
	free(tmp);
out:
	sodium_memzero(key, sizeof(key));
	buf_free(&head);
	buf_free(&plain);
	buf_free(&file);
	return rc;
}

/* A snapshot file's header, as read back. */
struct head {
	int source;                   /* KEY_TOKEN or KEY_PASS */
	const uint8_t *salt;          /* SALT_LEN bytes */
	const uint8_t *nonce;         /* the AEAD's nonce */
	int64_t revision;             /* the project revision the snapshot holds */
	int64_t written;              /* when it was written (seconds since the epoch) */
	char project[LIMIT_NAME_BUF]; /* what it holds */
	char environment[LIMIT_NAME_BUF];
	int version; /* 1 draft, 2 live */
	size_t len;  /* bytes of the header: the associated data */
};

/* Parses the header at the start of data[0..len); whether it is one. */
static bool parse_head(const uint8_t *data, size_t len, struct head *h)
{
	struct rd r = {data, len, 0, data != NULL};
	const uint8_t *magic = take(&r, MAGIC_LEN);
	const uint8_t *src = take(&r, 1);
	h->salt = take(&r, SALT_LEN);
	h->nonce = take(&r, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	h->revision = (int64_t)get_u64(&r);
	h->written = (int64_t)get_u64(&r);
	bool names = get_str(&r, h->project, sizeof(h->project)) &&
	             get_str(&r, h->environment, sizeof(h->environment));
	const uint8_t *ver = take(&r, 1);
	h->len = r.at;
	if (!r.ok || !names || memcmp(magic, MAGIC, MAGIC_LEN) != 0 || (*ver != 1 && *ver != 2))
		return false;
	h->source = *src;
	h->version = *ver;
	return true;
}

/* Reads the snapshot file whole (malloc'd into *data, *len): 0, or an error when there is none,
 * it is too large, or others may read it. */
static int read_private(const char *path, uint8_t **data, size_t *len, coffer_error *err)
{
	*data = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0 || (size_t)st.st_size > MAX_FILE) {
		if (fd >= 0)
			close(fd);
		return coffer__fail(err, COFFER_NOT_FOUND, "no fallback snapshot at %s", path);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return coffer__fail(err, COFFER_FAILED_PRECONDITION,
		                    "the fallback snapshot %s is readable by others: refused",
		                    path);
	}
	*len = (size_t)st.st_size;
	*data = malloc(*len);
	bool read_all = *data && read(fd, *data, *len) == (ssize_t)*len;
	close(fd);
	if (!read_all) {
		free(*data);
		*data = NULL;
		return coffer__fail(err, COFFER_DATA_LOSS, "%s is not a fallback snapshot", path);
	}
	return 0;
}

/* Whether the header may be used for (project, environment, version) under fb's rules: what it
 * holds, not older than a snapshot used here before, not older than fb's maximum age. */
static int check_head(const coffer_fallback *fb, const struct head *h, const char *project,
                      const char *environment, int version, coffer_error *err)
{
	if (strcmp(h->project, project) != 0 || strcmp(h->environment, environment) != 0 ||
	    h->version != version)
		return coffer__fail(
		        err, COFFER_FAILED_PRECONDITION,
		        "the fallback snapshot %s holds %s/%s/%s, not what was asked for", fb->path,
		        h->project, h->environment, h->version == 1 ? "draft" : "live");
	int64_t seen = marker_read(fb->path);
	if (h->revision < seen)
		return coffer__fail(err, COFFER_FAILED_PRECONDITION,
		                    "the fallback snapshot %s holds revision %lld, older than "
		                    "revision %lld already used here: refused (put back?)",
		                    fb->path, (long long)h->revision, (long long)seen);
	if (fb->max_age_seconds > 0 && (int64_t)time(NULL) - h->written > fb->max_age_seconds)
		return coffer__fail(err, COFFER_FAILED_PRECONDITION,
		                    "the fallback snapshot %s is older than %lld s", fb->path,
		                    (long long)fb->max_age_seconds);
	return 0;
}

/* The snapshot of the opened entries plain[0..len): n, then n (name, value) pairs. */
static int decode_entries(const uint8_t *plain, size_t len, int64_t revision, coffer_snapshot **out)
{
	struct rd q = {plain, len, 0, true};
	uint32_t n = get_u32(&q);
	const char **keys = calloc((size_t)n + 1, sizeof(*keys));
	char **values = calloc((size_t)n + 1, sizeof(*values));
	for (uint32_t i = 0; keys && values && i < n && q.ok; i++) {
		uint32_t nl = get_u32(&q);
		const uint8_t *name = take(&q, nl);
		uint32_t vl = get_u32(&q);
		const uint8_t *value = take(&q, vl);
		keys[i] = name ? strndup((const char *)name, nl) : NULL;
		values[i] = value ? malloc((size_t)vl + 1) : NULL;
		if (values[i]) {
			memcpy(values[i], value, vl);
			values[i][vl] = '\0';
		}
		q.ok = q.ok && keys[i] != NULL && values[i] != NULL;
	}
	int rc = keys == NULL || values == NULL || !q.ok ||
	                         coffer__snapshot_new(keys, (const char *const *)values, n,
	                                              revision, out) != 0
	                 ? -1
	                 : 0;
	for (uint32_t i = 0; keys && values && i < n; i++) {
		free((char *)keys[i]);
		if (values[i]) {
			sodium_memzero(values[i], strlen(values[i]));
			free(values[i]);
		}
	}
	free(keys);
	free(values);
	return rc;
}

int coffer__fallback_load(const coffer_fallback *fb, const char *token, const char *project,
                          const char *environment, int version, coffer_snapshot **out,
                          coffer_error *err)
{
	*out = NULL;
	if (sodium_init() < 0)
		return coffer__fail(err, COFFER_INTERNAL, "libsodium did not initialise");
	uint8_t *data = NULL, *plain = NULL;
	size_t len = 0, plain_len = 0;
	uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	struct head h;
	int rc = read_private(fb->path, &data, &len, err);
	if (rc != 0)
		return rc;
	if (!parse_head(data, len, &h) || len - h.len < crypto_aead_xchacha20poly1305_ietf_ABYTES) {
		rc = coffer__fail(err, COFFER_DATA_LOSS, "%s is not a fallback snapshot", fb->path);
		goto out_free_data;
	}
	if ((rc = check_head(fb, &h, project, environment, version, err)) != 0)
		goto out_free_data;
	if (derive(fb, token, h.source, h.salt, key, err) != 0) {
		rc = -1;
		goto out_wipe_key;
	}
	plain_len = len - h.len;
	plain = malloc(plain_len);
	unsigned long long mlen = 0;
	if (plain == NULL ||
	    crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, NULL, data + h.len, plain_len,
	                                               data, h.len, h.nonce, key) != 0) {
		rc = coffer__fail(err, COFFER_DATA_LOSS,
		                  "the fallback snapshot %s does not open: it was changed, or "
		                  "sealed with another key",
		                  fb->path);
		goto out_free_plain;
	}
	if (decode_entries(plain, (size_t)mlen, h.revision, out) != 0)
		rc = coffer__fail(err, COFFER_DATA_LOSS, "the fallback snapshot %s is damaged",
		                  fb->path);
	else
		coffer__snapshot_set_time(*out, h.written);
out_free_plain:
	if (plain) {
		sodium_memzero(plain, plain_len);
		free(plain);
	}
out_wipe_key:
	sodium_memzero(key, sizeof(key));
out_free_data:
	free(data);
	return rc;
}

int coffer_fallback_describe(const char *path, coffer_fallback_info *info, coffer_error *err)
{
	memset(info, 0, sizeof(*info));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return coffer__fail(err, COFFER_NOT_FOUND, "no fallback snapshot at %s", path);
	uint8_t head[MAGIC_LEN + 1 + SALT_LEN + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + 16 +
	             2 * (2 + LIMIT_NAME_BUF) + 1];
	ssize_t got = read(fd, head, sizeof(head));
	close(fd);
	struct head h;
	if (got <= 0 || !parse_head(head, (size_t)got, &h))
		return coffer__fail(err, COFFER_DATA_LOSS, "%s is not a fallback snapshot", path);
	info->revision = h.revision;
	info->written = h.written;
	snprintf(info->project, sizeof(info->project), "%s", h.project);
	snprintf(info->environment, sizeof(info->environment), "%s", h.environment);
	info->version = (coffer_version)h.version;
	return 0;
}
