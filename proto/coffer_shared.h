/*
 * coffer_shared.h - the little that cofferd and libcoffer share besides generated code: the status
 * table, reading a small file (certificates, keys, tokens) whole, and a growing
 * buffer for text that holds values.
 *
 * Neither side exports these: the server links them statically, libcoffer hides them.
 */
#ifndef COFFER_SHARED_H
#define COFFER_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The status table (coffer_status.def) by gRPC code: "NOT_FOUND" for 5, and so on ("UNKNOWN"
 * outside 0..16); the HTTP status the JSON endpoint and Connect answer with (500 outside); and
 * Connect's name ("not_found"; "" for OK, "unknown" outside). */
const char *coffer_status_name(int code);
int coffer_status_http(int code);
const char *coffer_status_connect(int code);
/* The gRPC code of a name, gRPC's ("NOT_FOUND") or Connect's ("not_found"); -1 when none. */
int coffer_status_from_name(const char *name);

/* Command lines, as cofferd, its subcommands and the coffer CLI read them: an option is
 * "--name=value" or "--name value" (a flag takes none).
 * coffer_opt_split: the length of the option name at the start of arg ("--name", up to "=" or the
 * end) and, after "=", its value into *inline_value (else NULL); 0 when arg is no option.
 * coffer_opt_value: the value of the option at argv[*i]: inline_value, else the next word
 * (advancing *i); NULL when there is none.
 * coffer_parse_num: s as a whole number from min to max into *out; false when it is not one. */
size_t coffer_opt_split(const char *arg, const char **inline_value);
const char *coffer_opt_value(int argc, char **argv, int *i, const char *inline_value);
bool coffer_parse_num(const char *s, long long min, long long max, long long *out);

/* The monotonic clock in milliseconds. */
int64_t coffer_mono_ms(void);
/* A random number in [0, cap) for spreading retries (full jitter); 0 when cap <= 0. */
int64_t coffer_random_below(int64_t cap);

/* Reads the file at path whole into a NUL-terminated malloc'd buffer of *len bytes (len may be
 * NULL). NULL when it cannot be read, is larger than max_bytes, or memory runs out; errno tells
 * which. The caller frees it (and wipes it first when it holds a key). */
char *coffer_read_file(const char *path, size_t max_bytes, size_t *len);

/* A growing buffer that leaves no copy behind: when it grows, the old memory is wiped before it
 * is freed. Zero-initialised it is empty; p stays NUL-terminated once anything was put. */
struct coffer_wbuf {
	char *p;
	size_t len, cap;
	int failed; /* memory ran out: later puts do nothing */
};

/* Makes room for n more bytes at once (an answer whose size is known roughly: no regrowth, no
 * copy wiped on the way); 0, or -1 when memory runs out (failed is set). */
int coffer_wbuf_reserve(struct coffer_wbuf *b, size_t n);
/* Appends n bytes of data; 0, or -1 when memory runs out (failed is set). */
int coffer_wbuf_put(struct coffer_wbuf *b, const void *data, size_t n);

/* Wipes and frees the buffer, leaving it empty. */
void coffer_wbuf_free(struct coffer_wbuf *b);

/* Appends the string s; 0, or -1 when memory runs out. */
int coffer_wbuf_str(struct coffer_wbuf *b, const char *s);

/* Appends what printf makes of fmt (at most 63 bytes: numbers and short literals); 0, or -1 when
 * memory runs out. */
int coffer_wbuf_fmt(struct coffer_wbuf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Appends s as a quoted JSON string: \" \\ \n \r \t escaped, other control bytes as \u00XX (s is
 * UTF-8, as every text the server keeps). 0, or -1 when memory runs out. */
int coffer_wbuf_json(struct coffer_wbuf *b, const char *s);

#endif
