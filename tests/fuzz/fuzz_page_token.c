/*
 * fuzz_page_token.c - the page token parser: any string decodes or is refused, never more than
 * fits; and whatever key decodes encodes back to a token that decodes to the same key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *token = malloc(size + 1);
	if (token == NULL)
		return 0;
	memcpy(token, data, size);
	token[size] = '\0';
	char key[300], again[300], encoded[2 * 300 + 8];
	if (page_token_decode(token, key, sizeof(key))) {
		if (strlen(key) >= sizeof(key))
			abort();
		/* the empty key is the first page: it has no token of its own */
		if (*key == '\0') {
			free(token);
			return 0;
		}
		page_token_encode(key, encoded, sizeof(encoded));
		if (!page_token_decode(encoded, again, sizeof(again)) || strcmp(key, again) != 0)
			abort();
	}
	/* a small buffer is never overrun */
	char tiny[4];
	(void)page_token_decode(token, tiny, sizeof(tiny));
	free(token);
	return 0;
}
