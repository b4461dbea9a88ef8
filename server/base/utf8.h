/*
 * utf8.h - well-formed UTF-8, as the wire contract requires of every string (the base room: the
 * runtime checks requests with it, the domain checks values).
 */
#ifndef COFFER_UTF8_H
#define COFFER_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
bool utf8_valid(const char *s, size_t n);

#endif
