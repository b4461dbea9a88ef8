/*
 * coffer_shared.h - the little that cofferd and libcoffer share besides generated code: the status
 * table, reading a small file (certificates, keys, tokens) whole, and a growing
 * buffer for text that holds values.
 *
 * Neither side exports these: the server links them statically, libcoffer hides them.
 */
#ifndef COFFER_SHARED_H
#define COFFER_SHARED_H

#include <stddef.h>

/* The status table (coffer_status.def) by gRPC code: "NOT_FOUND" for 5, and so on ("UNKNOWN"
 * outside 0..16); the HTTP status the JSON endpoint and Connect answer with (500 outside); and
 * Connect's name ("not_found"; "" for OK, "unknown" outside). */
const char *coffer_status_name(int code);
int coffer_status_http(int code);
const char *coffer_status_connect(int code);
/* The gRPC code of a name, gRPC's ("NOT_FOUND") or Connect's ("not_found"); -1 when none. */
int coffer_status_from_name(const char *name);

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

/* Appends n bytes of data; 0, or -1 when memory runs out (failed is set). */
int coffer_wbuf_put(struct coffer_wbuf *b, const void *data, size_t n);

/* Wipes and frees the buffer, leaving it empty. */
void coffer_wbuf_free(struct coffer_wbuf *b);

/* Appends s as a quoted JSON string: \" \\ \n \r \t escaped, other control bytes as \u00XX (s is
 * UTF-8, as every text the server keeps). 0, or -1 when memory runs out. */
int coffer_wbuf_json(struct coffer_wbuf *b, const char *s);

#endif
