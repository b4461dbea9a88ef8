/* coffer_shared.c - status code names and whole-file reads (see coffer_shared.h). */
#include "coffer_shared.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	/* open/read, not stdio: no library buffer is left holding a key after the call. */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	while (buf != NULL) {
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got < 0) {
				explicit_bzero(buf, n);
				free(buf);
				buf = NULL;
			}
			break;
		}
		n += (size_t)got;
		if (n > max_bytes) {
			explicit_bzero(buf, n);
			free(buf);
			buf = NULL;
			errno = EFBIG;
			break;
		}
		if (n == cap) {
			/* grow by copying, so that the old buffer can be wiped */
			char *bigger = malloc((cap *= 2) + 1);
			if (bigger != NULL)
				memcpy(bigger, buf, n);
			explicit_bzero(buf, n);
			free(buf);
			buf = bigger;
		}
	}
	int saved = errno;
	close(fd);
	errno = saved;
	if (buf != NULL) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	return buf;
}
