/* client.c - the high-level client: options, the client, resolve with and without a fallback
 * snapshot (see coffer/client.h). */
#include "coffer/client.h"
#include "coffer_client_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coffer_limits.h"

struct coffer_client {
	coffer_channel *ch; /* the channel */
	char *token;        /* the bearer token (the key of token-sealed fallback snapshots) */
};

void coffer_options_init(coffer_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	const char *addr = getenv("COFFER_ADDR");
	opts->target = addr && *addr ? addr : "127.0.0.1:50051";
	opts->token = getenv("COFFER_TOKEN");
	opts->ca_file = getenv("COFFER_CA_FILE");
	opts->cert_file = getenv("COFFER_CERT_FILE");
	opts->key_file = getenv("COFFER_KEY_FILE");
	opts->timeout_ms = LIMIT_CLIENT_TIMEOUT_MS;
	opts->max_retries = 4;
	const char *plain = getenv("COFFER_PLAINTEXT");
	opts->plaintext = plain && (strcmp(plain, "1") == 0 || strcmp(plain, "true") == 0);
}

int coffer_client_new(const coffer_options *opts, coffer_client **out, coffer_error *err)
{
	*out = NULL;
	if (opts == NULL)
		return coffer__fail(err, COFFER_INVALID_ARGUMENT, "no options given");
	coffer_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
	coffer_channel_options o = {
	        .target = opts->target,
	        .token = opts->token,
	        .ca_file = opts->ca_file,
	        .cert_file = opts->cert_file,
	        .key_file = opts->key_file,
	        .timeout_ms = opts->timeout_ms,
	        .max_retries = opts->max_retries,
	        .plaintext = opts->plaintext,
	};
	if (coffer_channel_new(&o, &c->ch, err) != 0) {
		free(c);
		return -1;
	}
	if (opts->token && (c->token = strdup(opts->token)) == NULL) {
		coffer_client_free(c);
		return coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
	}
	*out = c;
	return 0;
}

void coffer_client_free(coffer_client *client)
{
	if (client == NULL)
		return;
	coffer_channel_free(client->ch);
	if (client->token) {
		coffer__wipe(client->token, strlen(client->token));
		free(client->token);
	}
	free(client);
}

coffer_channel *coffer_client_channel(coffer_client *client)
{
	return client->ch;
}

int coffer_resolve(coffer_client *client, const char *project, const char *environment,
                   coffer_version version, coffer_snapshot **out, coffer_error *err)
{
	*out = NULL;
	if (client == NULL || project == NULL || environment == NULL)
		return coffer__fail(err, COFFER_INVALID_ARGUMENT,
		                    "client, project and environment are required");
	Coffer__V1__ResolveSecretsRequest req = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	req.project = (char *)project;
	req.environment = (char *)environment;
	req.version = (Coffer__V1__Version)version;
	Coffer__V1__ResolveSecretsResponse *resp = NULL;
	if (coffer_v1_secrets_resolve_secrets(client->ch, &req, &resp, err) != 0)
		return -1;
	size_t n = resp->n_secrets;
	const char **names = calloc(n + 1, sizeof(char *));
	const char **values = calloc(n + 1, sizeof(char *));
	int rc = 0;
	if (names == NULL || values == NULL) {
		rc = coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		for (size_t i = 0; i < n; i++) {
			names[i] = resp->secrets[i]->name;
			values[i] = resp->secrets[i]->value;
		}
		if (coffer__snapshot_new(names, values, n, resp->revision, out) != 0)
			rc = coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
	}
	free(names);
	free(values);
	for (size_t i = 0; i < n; i++)
		coffer__wipe(resp->secrets[i]->value, strlen(resp->secrets[i]->value));
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

int coffer_resolve_fallback(coffer_client *client, const char *project, const char *environment,
                            coffer_version version, const coffer_fallback *fb,
                            coffer_snapshot **out, int *from_fallback, coffer_error *err)
{
	*out = NULL;
	if (from_fallback)
		*from_fallback = 0;
	if (fb == NULL || fb->path == NULL)
		return coffer_resolve(client, project, environment, version, out, err);
	coffer_error own;
	if (err == NULL)
		err = &own;
	int rc = fb->only ? -1 : coffer_resolve(client, project, environment, version, out, err);
	if (rc == 0) {
		/* Written after every answer; a snapshot that cannot be written is said, not fatal.
		 */
		coffer_error werr;
		if (coffer__fallback_save(fb, client->token, project, environment, (int)version,
		                          *out, &werr) != 0)
			fprintf(stderr, "coffer: %s\n", werr.message);
		return 0;
	}
	if (!fb->only &&
	    (err->code == COFFER_UNAUTHENTICATED || err->code == COFFER_PERMISSION_DENIED)) {
		unlink(fb->path); /* a revoked credential must not keep working offline */
		return rc;
	}
	if (!fb->only && err->code != COFFER_UNAVAILABLE && err->code != COFFER_DEADLINE_EXCEEDED)
		return rc;
	coffer_error lerr;
	if (coffer__fallback_load(fb, client->token, project, environment, (int)version, out,
	                          &lerr) != 0) {
		if (fb->only)
			*err = lerr;
		else
			snprintf(err->message + strlen(err->message),
			         sizeof(err->message) - strlen(err->message),
			         "; no fallback snapshot used: %s", lerr.message);
		return -1;
	}
	if (from_fallback)
		*from_fallback = 1;
	memset(err, 0, sizeof(*err));
	return 0;
}
