/*
 * fuzz_settings.c - cofferd's settings parser over any command line (arguments separated by
 * newlines): every value parses or is refused, never beyond its range, and frees cleanly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	char *args[64];
	int n = 0;
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *save = NULL, *tok = strtok_r(text, "\n", &save); tok && n < 64;
	     tok = strtok_r(NULL, "\n", &save))
		args[n++] = tok;
	struct settings cfg;
	if (settings_from_env(&cfg) == 0 && settings_from_args(&cfg, n, args, 0) == 0) {
		if (cfg.workers < 0 || cfg.workers > 256 || cfg.db_connections < 1 ||
		    cfg.max_calls < 1 || cfg.cache_mb < 0 || cfg.max_message_bytes < 1024 ||
		    cfg.listen == NULL || cfg.database_url == NULL)
			abort();
	}
	settings_free(&cfg);
	free(text);
	return 0;
}
