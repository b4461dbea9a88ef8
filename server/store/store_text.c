/*
 * store_text.c - many rows in one statement: array literals for set-based statements (one
 * statement carries many rows as arrays, $1::int8[], $2::text[]..., that SQL unnests) and the
 * text format of COPY, instead of one round trip per row.
 */
#include <string.h>

#include "store_internal.h"

void store__text_put(struct store_text *t, const char *s, size_t n)
{
	if (!t->ok)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (cap < t->len + n + 1)
			cap *= 2;
		char *p = realloc(t->p, cap);
		if (p == NULL) {
			t->ok = false;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

/* A comma unless this is the first element after "{". */
static void sep(struct store_text *t)
{
	if (t->len > 1)
		store__text_put(t, ",", 1);
}

void store__text_i64(struct store_text *t, int64_t v)
{
	char buf[24];
	sep(t);
	int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
	store__text_put(t, buf, (size_t)n);
}

void store__text_hex(struct store_text *t, const uint8_t *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	sep(t);
	for (size_t i = 0; i < n && t->ok; i++) {
		char two[2] = {digits[b[i] >> 4], digits[b[i] & 15]};
		store__text_put(t, two, 2);
	}
}

void store__text_str(struct store_text *t, const char *s)
{
	sep(t);
	store__text_put(t, "\"", 1);
	/* Runs without a quote or a backslash go in whole; those two are escaped. */
	for (const char *p = s; *p && t->ok;) {
		size_t run = strcspn(p, "\"\\");
		store__text_put(t, p, run);
		p += run;
		if (*p) {
			char esc[2] = {'\\', *p++};
			store__text_put(t, esc, 2);
		}
	}
	store__text_put(t, "\"", 1);
}

/* ---- COPY rows (text format) ---- */

void store__copy_str(struct store_text *t, const char *s, bool last)
{
	/* Runs without a special byte go in whole; backslash, tab, line feed and carriage return
	 * are escaped. */
	for (const char *p = s; *p && t->ok;) {
		size_t run = strcspn(p, "\\\t\n\r");
		store__text_put(t, p, run);
		p += run;
		if (*p) {
			char c = *p++;
			char esc[2] = {'\\', c == '\t'   ? 't'
			                     : c == '\n' ? 'n'
			                     : c == '\r' ? 'r'
			                                 : c};
			store__text_put(t, esc, 2);
		}
	}
	store__text_put(t, last ? "\n" : "\t", 1);
}

void store__copy_i64(struct store_text *t, int64_t v, bool last)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%" PRId64 "%c", v, last ? '\n' : '\t');
	store__text_put(t, buf, (size_t)n);
}

/* ---- COPY rows (binary format) ---- */

static void put_be(struct store_text *t, uint64_t v, int bytes)
{
	char b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (char)(v >> (8 * (bytes - 1 - i)));
	store__text_put(t, b, (size_t)bytes);
}

void store__bin_start(struct store_text *t)
{
	store__text_put(t, "PGCOPY\n\377\r\n\0", 11);
	put_be(t, 0, 4); /* flags */
	put_be(t, 0, 4); /* header extension */
}

void store__bin_row(struct store_text *t, int fields)
{
	put_be(t, (uint64_t)fields, 2);
}

void store__bin_int(struct store_text *t, int64_t v, int bytes)
{
	put_be(t, (uint64_t)bytes, 4);
	put_be(t, (uint64_t)v, bytes);
}

void store__bin_null(struct store_text *t)
{
	put_be(t, 0xffffffffu, 4);
}

void store__bin_bytes(struct store_text *t, const uint8_t *p, size_t n)
{
	put_be(t, (uint64_t)n, 4);
	store__text_put(t, (const char *)p, n);
}

void store__bin_end(struct store_text *t)
{
	put_be(t, 0xffffu, 2);
}
