/* validate.c - name, value and paging rules (see validate.h). */
#include "validate.h"

#include <stdio.h>
#include <string.h>

#include "coffer_limits.h"
#include "utf8.h"

bool validate_utf8(const char *str, size_t n)
{
	return utf8_valid(str, n);
}

bool validate_slug(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > LIMIT_SLUG_CHARS || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

bool validate_secret_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > LIMIT_SECRET_NAME_CHARS)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!(alpha || (i > 0 && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

bool validate_value(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n <= LIMIT_VALUE_BYTES && validate_utf8(s ? s : "", n);
}

bool validate_description(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n <= LIMIT_DESCRIPTION_BYTES && validate_utf8(s ? s : "", n);
}

bool validate_page_size(int32_t in, int *out)
{
	if (in < 0 || in > LIMIT_PAGE_SIZE)
		return false;
	*out = in == 0 ? LIMIT_DEFAULT_PAGE_SIZE : (int)in;
	return true;
}

/* Tokens: "p1." followed by the hex of the last name. */
void page_token_encode(const char *last, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	if (cap < 4) {
		if (cap)
			out[0] = '\0';
		return;
	}
	memcpy(out, "p1.", 3);
	n = 3;
	for (const unsigned char *p = (const unsigned char *)last; *p && n + 3 <= cap; p++) {
		out[n++] = hex[*p >> 4];
		out[n++] = hex[*p & 15];
	}
	out[n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool page_token_decode(const char *token, char *out, size_t cap)
{
	if (cap == 0)
		return false;
	out[0] = '\0';
	if (token == NULL || *token == '\0')
		return true;
	if (strncmp(token, "p1.", 3) != 0)
		return false;
	const char *h = token + 3;
	size_t n = strlen(h);
	if (n == 0 || n % 2 || n / 2 + 1 > cap)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (char)(hi * 16 + lo);
		if (out[i] == '\0')
			return false;
	}
	out[n / 2] = '\0';
	return true;
}
