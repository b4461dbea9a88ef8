/*
 * dotenv.c - reads .env files in the common dialect (see dotenv.h and docs/changes.md).
 *
 *   # a comment line; blank lines are skipped
 *   export NAME=value        `export ` is allowed and ignored
 *   NAME = value  # comment  unquoted: trimmed; " #" starts a comment (NAME=  # note: empty)
 *   NAME='literal $x \n'     single quotes: nothing is interpreted; may span lines
 *   NAME="a\nb \"q\" \$x"    double quotes: \n \r \t \" \\ \$ \` are escapes (other backslashes
 *                            stay); may span lines
 *   NAME=                    an empty value
 * CRLF line ends read as LF. A name set twice is refused (both lines are named), and so is a NUL
 * byte anywhere. Errors name the line and never quote it: a line may hold a value.
 */
#include "dotenv.h"

#include "coffer_shared.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reader {
	const char *p, *end;
	int line;
	char *err;
	size_t errcap;
};

static int fail(struct reader *r, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int fail(struct reader *r, int line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(r->err, r->errcap, "line %d: %s", line, msg);
	return -1;
}

/* A value grows in a coffer_wbuf: wiped when it grows and when it is dropped. */
static void put(struct coffer_wbuf *v, char ch)
{
	(void)coffer_wbuf_put(v, &ch, 1); /* a failure shows in v->failed */
}

static bool at_eol(const struct reader *r)
{
	return r->p >= r->end || *r->p == '\n' ||
	       (*r->p == '\r' && r->p + 1 < r->end && r->p[1] == '\n');
}

static void skip_eol(struct reader *r)
{
	if (r->p < r->end && *r->p == '\r')
		r->p++;
	if (r->p < r->end && *r->p == '\n') {
		r->p++;
		r->line++;
	}
}

static void skip_blanks(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t'))
		r->p++;
}

/* After a value: blanks, then a comment or the end of the line. */
static int rest_of_line(struct reader *r, int line)
{
	skip_blanks(r);
	if (r->p < r->end && *r->p == '#')
		while (!at_eol(r))
			r->p++;
	if (!at_eol(r))
		return fail(r, line, "unexpected text after the closing quote");
	skip_eol(r);
	return 0;
}

/* A quoted value from just after its opening quote. */
static int quoted(struct reader *r, char quote, int line, struct coffer_wbuf *v)
{
	for (;;) {
		if (r->p >= r->end)
			return fail(r, line, "the %s quote is never closed",
			            quote == '"' ? "double" : "single");
		char ch = *r->p++;
		if (ch == quote)
			return 0;
		if (ch == '\r' && r->p < r->end && *r->p == '\n')
			continue; /* CRLF inside a value reads as LF */
		if (ch == '\n')
			r->line++;
		if (ch == '\\' && quote == '"' && r->p < r->end) {
			char next = *r->p;
			const char *from = "nrt\"\\$`", *to = "\n\r\t\"\\$`";
			const char *k = strchr(from, next);
			if (k && next) {
				r->p++;
				put(v, to[k - from]);
				continue;
			}
		}
		put(v, ch);
	}
}

/* An unquoted value: to the end of the line or a " #" comment, trailing blanks dropped. blank
 * says whether blanks came between "=" and the value: then a "#" at its start is a comment
 * (`NAME=   # note` is empty; `NAME=#x` is "#x"). */
static void unquoted(struct reader *r, bool blank, struct coffer_wbuf *v)
{
	const char *start = r->p;
	while (!at_eol(r)) {
		bool after_blank = r->p > start ? r->p[-1] == ' ' || r->p[-1] == '\t' : blank;
		if (*r->p == '#' && after_blank)
			break;
		r->p++;
	}
	const char *stop = r->p;
	while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
		stop--;
	for (const char *q = start; q < stop; q++)
		put(v, *q);
	while (!at_eol(r))
		r->p++;
	skip_eol(r);
}

static bool name_char(char ch, bool first)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' ||
	       (!first && ((ch >= '0' && ch <= '9') || ch == '.' || ch == '-'));
}

int dotenv_parse(const char *text, size_t len, struct env_pair **out, size_t *n, char *err,
                 size_t errcap)
{
	struct reader r = {text, text + len, 1, err, errcap};
	struct env_pair *pairs = NULL;
	size_t count = 0, cap = 0;
	*out = NULL;
	*n = 0;
	if (errcap)
		err[0] = '\0';
	/* A NUL byte would end a value early, and the rest of it be lost without a word. */
	const char *nul = memchr(text, '\0', len);
	if (nul) {
		int line = 1;
		for (const char *q = text; q < nul; q++)
			line += *q == '\n';
		return fail(&r, line, "a NUL byte is not allowed in a .env file");
	}
	while (r.p < r.end) {
		skip_blanks(&r);
		if (at_eol(&r) || *r.p == '#') { /* blank or comment */
			while (!at_eol(&r))
				r.p++;
			skip_eol(&r);
			continue;
		}
		int line = r.line;
		if ((size_t)(r.end - r.p) > 7 && strncmp(r.p, "export", 6) == 0 &&
		    (r.p[6] == ' ' || r.p[6] == '\t')) {
			r.p += 6;
			skip_blanks(&r);
		}
		const char *name = r.p;
		while (r.p < r.end && name_char(*r.p, r.p == name))
			r.p++;
		size_t name_len = (size_t)(r.p - name);
		skip_blanks(&r);
		if (name_len == 0 || r.p >= r.end || *r.p != '=') {
			dotenv_free(pairs, count);
			return fail(&r, line,
			            "expected NAME=value (a name of letters, digits and _)");
		}
		r.p++;
		const char *after_eq = r.p;
		skip_blanks(&r);
		struct coffer_wbuf v = {0};
		coffer_wbuf_put(&v, "", 0); /* an empty value is "" */
		int rc = 0;
		if (r.p < r.end && (*r.p == '"' || *r.p == '\'')) {
			char q = *r.p++;
			rc = quoted(&r, q, line, &v);
			if (rc == 0)
				rc = rest_of_line(&r, line);
		} else {
			unquoted(&r, r.p > after_eq, &v);
		}
		if (rc == 0 && v.failed)
			rc = fail(&r, line, "out of memory");
		for (size_t i = 0; rc == 0 && i < count; i++)
			if (strlen(pairs[i].name) == name_len &&
			    strncmp(pairs[i].name, name, name_len) == 0)
				rc = fail(&r, line,
				          "%.*s is already set on line %d (a name is set once)",
				          (int)name_len, name, pairs[i].line);
		if (rc == 0 && count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct env_pair *np = realloc(pairs, ncap * sizeof(*np));
			if (np == NULL)
				rc = fail(&r, line, "out of memory");
			else {
				pairs = np;
				cap = ncap;
			}
		}
		char *name_copy = rc == 0 ? strndup(name, name_len) : NULL;
		if (rc == 0 && name_copy == NULL)
			rc = fail(&r, line, "out of memory");
		if (rc != 0) {
			coffer_wbuf_free(&v);
			dotenv_free(pairs, count);
			return -1;
		}
		pairs[count++] = (struct env_pair){name_copy, v.p, line};
	}
	*out = pairs;
	*n = count;
	return 0;
}

void dotenv_free(struct env_pair *pairs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(pairs[i].name);
		if (pairs[i].value) {
			explicit_bzero(pairs[i].value, strlen(pairs[i].value));
			free(pairs[i].value);
		}
	}
	free(pairs);
}
