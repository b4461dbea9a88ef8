/* client.c - the high-level client: options, resolve, snapshots, templates (see coffer/client.h).
 */
#include "coffer/client.h"
#include "coffer_client_internal.h"
#include "coffer_shared.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct coffer_client {
	coffer_channel *ch; /* the channel */
	char *token;        /* the bearer token (the key of token-sealed fallback snapshots) */
};

struct snapshot_entry {
	char *name;  /* secret name */
	char *value; /* plaintext */
	size_t len;  /* bytes in value */
};

struct coffer_snapshot {
	int64_t revision;               /* project revision it was read at */
	int64_t written;                /* read from a fallback file written then; 0: the server */
	size_t n;                       /* entries */
	struct snapshot_entry *entries; /* sorted by name (strcmp) */
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
	opts->timeout_ms = 10000;
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

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct snapshot_entry *)a)->name,
	              ((const struct snapshot_entry *)b)->name);
}

int coffer__snapshot_new(const char *const *names, const char *const *values, size_t n,
                         int64_t revision, coffer_snapshot **out)
{
	coffer_snapshot *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (s == NULL || (s->entries = calloc(n + 1, sizeof(*s->entries))) == NULL) {
		free(s);
		return -1;
	}
	s->revision = revision;
	for (size_t i = 0; i < n; i++, s->n++) {
		struct snapshot_entry *e = &s->entries[i];
		e->len = strlen(values[i]);
		if ((e->name = strdup(names[i])) == NULL ||
		    (e->value = strdup(values[i])) == NULL) {
			free(e->name);
			coffer_snapshot_free(s);
			return -1;
		}
	}
	qsort(s->entries, s->n, sizeof(*s->entries), by_name);
	*out = s;
	return 0;
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
	coffer_snapshot *s = calloc(1, sizeof(*s));
	int rc = 0;
	if (s == NULL || (s->entries = calloc(resp->n_secrets + 1, sizeof(*s->entries))) == NULL) {
		rc = coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	s->revision = resp->revision;
	for (size_t i = 0; i < resp->n_secrets; i++) {
		const Coffer__V1__ResolvedSecret *x = resp->secrets[i];
		struct snapshot_entry *e = &s->entries[s->n];
		e->len = strlen(x->value);
		e->name = strdup(x->name);
		e->value = malloc(e->len + 1);
		if (e->name == NULL || e->value == NULL) {
			free(e->name);
			free(e->value);
			rc = coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
			goto out;
		}
		memcpy(e->value, x->value, e->len + 1);
		s->n++;
	}
out:
	for (size_t i = 0; i < resp->n_secrets; i++)
		coffer__wipe(resp->secrets[i]->value, strlen(resp->secrets[i]->value));
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (rc) {
		coffer_snapshot_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static const struct snapshot_entry *find(const coffer_snapshot *s, const char *name, size_t len)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *n = s->entries[mid].name;
		int c = strncmp(n, name, len);
		if (c == 0)
			c = n[len] == '\0' ? 0 : 1;
		if (c == 0)
			return &s->entries[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *coffer_snapshot_get(const coffer_snapshot *snap, const char *name)
{
	if (snap == NULL || name == NULL)
		return NULL;
	const struct snapshot_entry *e = find(snap, name, strlen(name));
	return e ? e->value : NULL;
}

size_t coffer_snapshot_count(const coffer_snapshot *snap)
{
	return snap ? snap->n : 0;
}

const char *coffer_snapshot_name(const coffer_snapshot *snap, size_t i)
{
	return snap && i < snap->n ? snap->entries[i].name : NULL;
}

int64_t coffer_snapshot_revision(const coffer_snapshot *snap)
{
	return snap ? snap->revision : 0;
}

int64_t coffer_snapshot_time(const coffer_snapshot *snap)
{
	return snap ? snap->written : 0;
}

void coffer__snapshot_set_time(coffer_snapshot *s, int64_t written)
{
	s->written = written;
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

int coffer_snapshot_render(const coffer_snapshot *snap, const char *tmpl, char **out,
                           coffer_error *err)
{
	static const char ref[] = "{secret.";
	struct coffer_wbuf o = {0};
	*out = NULL;
	if (snap == NULL || tmpl == NULL)
		return coffer__fail(err, COFFER_INVALID_ARGUMENT,
		                    "snapshot and template are required");
	int rc = coffer_wbuf_put(&o, "", 0);
	for (const char *p = tmpl; *p && rc == 0;) {
		if (p[0] == '{' && p[1] == '{') {
			rc = coffer_wbuf_put(&o, "{", 1);
			p += 2;
		} else if (strncmp(p, ref, sizeof(ref) - 1) == 0) {
			const char *name = p + sizeof(ref) - 1;
			const char *end = strchr(name, '}');
			if (end == NULL) {
				rc = coffer__fail(err, COFFER_INVALID_ARGUMENT,
				                  "a {secret. reference is not closed");
				break;
			}
			const struct snapshot_entry *e = find(snap, name, (size_t)(end - name));
			if (e == NULL) {
				rc = coffer__fail(err, COFFER_NOT_FOUND,
				                  "secret \"%.*s\" is not in the snapshot",
				                  (int)(end - name), name);
				break;
			}
			rc = coffer_wbuf_put(&o, e->value, e->len);
			p = end + 1;
		} else {
			const char *next = strchr(p + 1, '{');
			size_t n = next ? (size_t)(next - p) : strlen(p);
			rc = coffer_wbuf_put(&o, p, n);
			p += n;
		}
	}
	if (rc != 0) {
		if (err && err->code == 0)
			coffer__fail(err, COFFER_RESOURCE_EXHAUSTED, "out of memory");
		coffer_wbuf_free(&o);
		return -1;
	}
	*out = o.p;
	return 0;
}

void coffer_snapshot_free(coffer_snapshot *snap)
{
	if (snap == NULL)
		return;
	for (size_t i = 0; i < snap->n; i++) {
		coffer__wipe(snap->entries[i].value, snap->entries[i].len);
		free(snap->entries[i].value);
		free(snap->entries[i].name);
	}
	free(snap->entries);
	free(snap);
}
