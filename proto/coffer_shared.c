/* coffer_shared.c - status code names and whole-file reads (see coffer_shared.h). */
#include "coffer_shared.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
};

const char *coffer_status_name(int code)
{
	if (code >= 0 && code < (int)(sizeof(names) / sizeof(names[0])))
		return names[code];
	return "UNKNOWN";
}

char *coffer_read_file(const char *path, size_t max_bytes, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	while (buf != NULL) {
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n > max_bytes) {
			free(buf);
			buf = NULL;
			errno = EFBIG;
			break;
		}
		if (got == 0)
			break;
		if (n == cap) {
			char *bigger = realloc(buf, (cap *= 2) + 1);
			if (bigger == NULL) {
				explicit_bzero(buf, n);
				free(buf);
			}
			buf = bigger;
		}
	}
	int failed = ferror(f);
	fclose(f);
	if (buf != NULL && failed) {
		explicit_bzero(buf, n);
		free(buf);
		errno = EIO;
		return NULL;
	}
	if (buf != NULL) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	return buf;
}
