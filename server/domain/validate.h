/*
 * validate.h - input rules of API.md ("Common"), as plain C.
 */
#ifndef COFFER_VALIDATE_H
#define COFFER_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer_limits.h"

/* Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
bool validate_utf8(const char *s, size_t n);
/* Project and environment names: COFFER_RULE_SLUG. */
bool validate_slug(const char *s);
/* Secret names: COFFER_RULE_SECRET_NAME. */
bool validate_secret_name(const char *s);
bool validate_value(const char *s);
bool validate_description(const char *s);
/* page_size 0 -> 100; negative or over 1000 -> false. */
bool validate_page_size(int32_t in, int *out);

/* Opaque page tokens carry the last name of the previous page. Encodes into out (cap >= 2*len+8).
 */
void page_token_encode(const char *last_name, char *out, size_t cap);
/* Decodes a token into out (cap bytes); empty token -> "" and true; malformed -> false. */
bool page_token_decode(const char *token, char *out, size_t cap);

#endif
