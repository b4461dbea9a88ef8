/* coffer_shared.c - status code names, whole-file reads and wiping buffers (see coffer_shared.h).
 */
#include "coffer_shared.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const struct {
	const char *name;    /* "NOT_FOUND" */
	int http;            /* 404 */
	const char *connect; /* "not_found" */
} statuses[] = {
#define STATUS(code, name, http, connect) [code] = {#name, http, connect},
#include "coffer_status.def"
};
#define N_STATUSES ((int)(sizeof(statuses) / sizeof(statuses[0])))

const char *coffer_status_name(int code)
{
	return code >= 0 && code < N_STATUSES ? statuses[code].name : "UNKNOWN";
}

int coffer_status_http(int code)
{
	return code >= 0 && code < N_STATUSES ? statuses[code].http : 500;
}

const char *coffer_status_connect(int code)
{
	return code >= 0 && code < N_STATUSES ? statuses[code].connect : "unknown";
}

int coffer_status_from_name(const char *name)
{
	for (int i = 0; name != NULL && i < N_STATUSES; i++)
		if (strcmp(statuses[i].name, name) == 0 || strcmp(statuses[i].connect, name) == 0)
			return i;
	return -1;
}

size_t coffer_opt_split(const char *arg, const char **inline_value)
{
	*inline_value = NULL;
	if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
		return 0;
	const char *eq = strchr(arg, '=');
	if (eq != NULL)
		*inline_value = eq + 1;
	return eq ? (size_t)(eq - arg) : strlen(arg);
}

const char *coffer_opt_value(int argc, char **argv, int *i, const char *inline_value)
{
	if (inline_value != NULL)
		return inline_value;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

bool coffer_parse_num(const char *s, long long min, long long max, long long *out)
{
	char *end = NULL;
	errno = 0;
	long long v = s ? strtoll(s, &end, 10) : 0;
	if (s == NULL || errno || *s == '\0' || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int64_t coffer_mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t coffer_random_below(int64_t cap)
{
	uint64_t r = 0;
	if (cap <= 0)
		return 0;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint64_t)rand();
	return (int64_t)(r % (uint64_t)cap);
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

int coffer_wbuf_reserve(struct coffer_wbuf *b, size_t n)
{
	if (b->failed || b->len + n + 1 <= b->cap)
		return b->failed ? -1 : 0;
	size_t len = b->len;
	if (coffer_wbuf_put(b, "", 0) != 0 || b->cap >= len + n + 1)
		return b->failed ? -1 : 0;
	char *p = malloc(len + n + 1);
	if (p == NULL) {
		b->failed = 1;
		return -1;
	}
	memcpy(p, b->p, len + 1);
	explicit_bzero(b->p, b->cap);
	free(b->p);
	b->p = p;
	b->cap = len + n + 1;
	return 0;
}

int coffer_wbuf_put(struct coffer_wbuf *b, const void *data, size_t n)
{
	if (b->failed)
		return -1;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = malloc(cap);
		if (p == NULL) {
			b->failed = 1;
			return -1;
		}
		if (b->p) {
			memcpy(p, b->p, b->len);
			explicit_bzero(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

void coffer_wbuf_free(struct coffer_wbuf *b)
{
	if (b->p) {
		explicit_bzero(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

int coffer_wbuf_str(struct coffer_wbuf *b, const char *s)
{
	return coffer_wbuf_put(b, s, strlen(s));
}

int coffer_wbuf_fmt(struct coffer_wbuf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	return coffer_wbuf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

int coffer_wbuf_json(struct coffer_wbuf *b, const char *s)
{
	coffer_wbuf_put(b, "\"", 1);
	const char *run = s;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c != '"' && c != '\\' && c >= 0x20)
			continue;
		coffer_wbuf_put(b, run, (size_t)(s - run));
		char esc[8];
		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c == '\n' || c == '\r' || c == '\t')
			snprintf(esc, sizeof(esc), "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
		else
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		coffer_wbuf_put(b, esc, strlen(esc));
		run = s + 1;
	}
	coffer_wbuf_put(b, run, (size_t)(s - run));
	return coffer_wbuf_put(b, "\"", 1);
}
