/* Resolves support-bot/staging/draft and renders a header with the installed library. */
#include <stdio.h>
#include <stdlib.h>

#include <coffer/client.h>

int main(void)
{
	coffer_options o;
	coffer_options_init(&o);
	coffer_client *client;
	coffer_snapshot *snap;
	coffer_error err;
	char *header;
	if (coffer_client_new(&o, &client, &err) != 0 ||
	    coffer_resolve(client, "support-bot", "staging", COFFER_VERSION_DRAFT, &snap, &err) !=
	            0 ||
	    coffer_snapshot_render(snap, "Bearer {secret.OPENAI_API_KEY}", &header, &err) != 0) {
		fprintf(stderr, "%s: %s\n", coffer_code_name(err.code), err.message);
		return 1;
	}
	printf("%s\n", header);
	free(header);
	coffer_snapshot_free(snap);
	coffer_client_free(client);
	return 0;
}
