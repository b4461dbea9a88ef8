/*
 * snapshot.c - what a resolve returns (see coffer/client.h): the secrets of one (project,
 * environment, version) at a revision, sorted by name, looked up by name and rendered into
 * templates; values wiped when it is freed. Made from a resolve (client.c) or a fallback file
 * (fallback.c).
 */
#include "coffer/client.h"
#include "coffer_client_internal.h"
#include "coffer_shared.h"

#include <stdlib.h>
#include <string.h>

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
