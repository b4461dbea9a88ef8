/*
 * changes.c - coffer apply (a change set from a JSON file) and coffer secrets import (a .env or
 * JSON file as one change set): both are one Secrets/ApplyChanges call, so they write everything
 * or nothing, at one revision. The formats are in docs/changes.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coffer/v1/secrets.stub.h"
#include "dotenv.h"

/* Files hold values: jansson's memory is wiped before it is freed. */
static void *json_alloc(size_t n)
{
	return malloc(n);
}

static void json_release(void *p)
{
	if (p) {
		explicit_bzero(p, malloc_usable_size(p));
		free(p);
	}
}

/* Reads FILE ("-": standard input) whole; NULL (said on stderr) when it cannot. */
static char *read_all(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "coffer: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	size_t got;
	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			char *nb = malloc(cap * 2 + 1);
			if (nb)
				memcpy(nb, buf, n);
			explicit_bzero(buf, n);
			free(buf);
			buf = nb;
			cap *= 2;
		}
		if (n > (64u << 20)) {
			fprintf(stderr, "coffer: %s is larger than 64 MiB\n", path);
			explicit_bzero(buf, n);
			free(buf);
			buf = NULL;
		}
	}
	bool bad = ferror(f);
	if (f != stdin)
		fclose(f);
	if (buf == NULL || bad) {
		if (buf) {
			explicit_bzero(buf, n);
			free(buf);
		}
		fprintf(stderr, "coffer: cannot read %s\n", path);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void drop_text(char *t, size_t len)
{
	if (t) {
		explicit_bzero(t, len);
		free(t);
	}
}

/* ---- building the request ---- */

/* A change set being built: every message lives until set_free. */
struct set {
	Coffer__V1__ApplyChangesRequest req;
	size_t cap;
	int *line; /* import: the file line of each change (0: none) */
};

static Coffer__V1__Change *set_add(struct set *s, int line)
{
	if (s->req.n_changes == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		Coffer__V1__Change **nc = realloc(s->req.changes, cap * sizeof(*nc));
		int *nl = nc ? realloc(s->line, cap * sizeof(*nl)) : NULL;
		if (nc)
			s->req.changes = nc;
		if (nl == NULL)
			return NULL;
		s->line = nl;
		s->cap = cap;
	}
	Coffer__V1__Change *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	coffer__v1__change__init(c);
	s->line[s->req.n_changes] = line;
	s->req.changes[s->req.n_changes++] = c;
	return c;
}

static void set_free(struct set *s)
{
	/* The strings belong to the parsed file (wiped there); only the messages are ours. */
	for (size_t i = 0; i < s->req.n_changes; i++) {
		Coffer__V1__Change *c = s->req.changes[i];
		/* The five members share one union: whichever is set is this one pointer. */
		if (c->change_case != COFFER__V1__CHANGE__CHANGE__NOT_SET)
			free(c->create_secret);
		free(c);
	}
	free(s->req.changes);
	free(s->line);
}

/* ---- the five kinds of change, added to a set (strings are borrowed, not copied) ---- */

static int add_create(struct set *s, int line, const char *name, const char *value, int vis,
                      const char *desc)
{
	Coffer__V1__Change *ch = set_add(s, line);
	Coffer__V1__CreateSecretChange *x = ch ? calloc(1, sizeof(*x)) : NULL;
	if (x == NULL)
		return -1;
	coffer__v1__create_secret_change__init(x);
	x->name = (char *)name;
	x->value = (char *)value;
	x->visibility = vis;
	x->description = (char *)(desc ? desc : "");
	ch->change_case = COFFER__V1__CHANGE__CHANGE_CREATE_SECRET;
	ch->create_secret = x;
	return 0;
}

/* value, desc: NULL leaves them as they are; vis 0 too. */
static int add_update(struct set *s, int line, const char *name, const char *value, int vis,
                      const char *desc)
{
	Coffer__V1__Change *ch = set_add(s, line);
	Coffer__V1__UpdateSecretChange *x = ch ? calloc(1, sizeof(*x)) : NULL;
	if (x == NULL)
		return -1;
	coffer__v1__update_secret_change__init(x);
	x->name = (char *)name;
	if (value) {
		x->value_update_case = COFFER__V1__UPDATE_SECRET_CHANGE__VALUE_UPDATE_VALUE;
		x->value = (char *)value;
	}
	if (desc) {
		x->description_update_case =
		        COFFER__V1__UPDATE_SECRET_CHANGE__DESCRIPTION_UPDATE_DESCRIPTION;
		x->description = (char *)desc;
	}
	x->visibility = vis;
	ch->change_case = COFFER__V1__CHANGE__CHANGE_UPDATE_SECRET;
	ch->update_secret = x;
	return 0;
}

static int add_delete(struct set *s, int line, const char *name)
{
	Coffer__V1__Change *ch = set_add(s, line);
	Coffer__V1__DeleteSecretChange *x = ch ? calloc(1, sizeof(*x)) : NULL;
	if (x == NULL)
		return -1;
	coffer__v1__delete_secret_change__init(x);
	x->name = (char *)name;
	ch->change_case = COFFER__V1__CHANGE__CHANGE_DELETE_SECRET;
	ch->delete_secret = x;
	return 0;
}

/* value NULL: delete the override. */
static int add_override(struct set *s, int line, const char *env, int version, const char *secret,
                        const char *value)
{
	Coffer__V1__Change *ch = set_add(s, line);
	if (ch == NULL)
		return -1;
	if (value) {
		Coffer__V1__SetOverrideChange *x = calloc(1, sizeof(*x));
		if (x == NULL)
			return -1;
		coffer__v1__set_override_change__init(x);
		x->environment = (char *)env;
		x->version = version;
		x->secret = (char *)secret;
		x->value = (char *)value;
		ch->change_case = COFFER__V1__CHANGE__CHANGE_SET_OVERRIDE;
		ch->set_override = x;
	} else {
		Coffer__V1__DeleteOverrideChange *x = calloc(1, sizeof(*x));
		if (x == NULL)
			return -1;
		coffer__v1__delete_override_change__init(x);
		x->environment = (char *)env;
		x->version = version;
		x->secret = (char *)secret;
		ch->change_case = COFFER__V1__CHANGE__CHANGE_DELETE_OVERRIDE;
		ch->delete_override = x;
	}
	return 0;
}

static int visibility_of(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	if (strcmp(s, "masked") == 0)
		return COFFER__V1__VISIBILITY__VISIBILITY_MASKED;
	if (strcmp(s, "restricted") == 0)
		return COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED;
	return -1;
}

/* The kinds of change a changes file may hold, and the fields each takes (all strings). */
static const struct {
	const char *kind;
	const char *fields[5];
} kinds[] = {
        {"create_secret", {"name", "value", "visibility", "description", NULL}},
        {"update_secret", {"name", "value", "visibility", "description", NULL}},
        {"delete_secret", {"name", NULL}},
        {"set_override", {"environment", "version", "secret", "value", NULL}},
        {"delete_override", {"environment", "version", "secret", NULL}},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* The string member `key` of object o (NULL when absent or null). */
static const char *member(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Every member of body is a field kind k takes, and a string: 0, or 2 with the member named (a
 * misspelled field would otherwise be dropped, and the change do less than it says). */
static int check_fields(struct cli *c, size_t i, size_t k, json_t *body)
{
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v)
	{
		bool known = false;
		for (size_t f = 0; kinds[k].fields[f] && !known; f++)
			known = strcmp(kinds[k].fields[f], key) == 0;
		if (!known)
			return cli_usage_error(c, "change %zu (%s): unknown field \"%s\"", i,
			                       kinds[k].kind, key);
		if (!json_is_string(v) && !json_is_null(v))
			return cli_usage_error(c, "change %zu (%s): field \"%s\" is not a string",
			                       i, kinds[k].kind, key);
	}
	return 0;
}

/* One change of a changes file (an object with one of the five keys) into s; 0, or 2 with the
 * reason said (never a value): an unknown kind or field, or one that is not a string, writes
 * nothing. */
static int read_change(struct cli *c, struct set *s, size_t i, json_t *item)
{
	if (!json_is_object(item) || json_object_size(item) != 1)
		return cli_usage_error(
		        c,
		        "change %zu: an object with one of create_secret, "
		        "update_secret, delete_secret, set_override, delete_override",
		        i);
	const char *kind_key = json_object_iter_key(json_object_iter(item));
	json_t *body = json_object_iter_value(json_object_iter(item));
	size_t k = 0;
	while (k < N_KINDS && strcmp(kinds[k].kind, kind_key) != 0)
		k++;
	if (k == N_KINDS)
		return cli_usage_error(
		        c,
		        "change %zu: unknown kind \"%s\" (create_secret, "
		        "update_secret, delete_secret, set_override, delete_override)",
		        i, kind_key);
	const char *kind = kinds[k].kind;
	if (!json_is_object(body))
		return cli_usage_error(c, "change %zu (%s): an object of fields", i, kind);
	int rc = check_fields(c, i, k, body);
	if (rc)
		return rc;
	const char *name = member(body, "name"), *value = member(body, "value"),
	           *desc = member(body, "description"), *vis = member(body, "visibility"),
	           *env = member(body, "environment"), *version = member(body, "version"),
	           *secret = member(body, "secret");
	int visibility = visibility_of(vis);
	if (visibility < 0)
		return cli_usage_error(c, "change %zu (%s): visibility is masked or restricted", i,
		                       kind);
	bool override = kind[0] == 's' || strcmp(kind, "delete_override") == 0;
	if (!override && name == NULL)
		return cli_usage_error(c, "change %zu (%s): name is required", i, kind);
	if (override && (env == NULL || secret == NULL || cli_version(version) == 0))
		return cli_usage_error(c,
		                       "change %zu (%s): environment, version (draft or live) and "
		                       "secret are required",
		                       i, kind);
	if ((strcmp(kind, "create_secret") == 0 || strcmp(kind, "set_override") == 0) &&
	    value == NULL)
		return cli_usage_error(c, "change %zu (%s): value is required", i, kind);
	if (strcmp(kind, "create_secret") == 0)
		rc = add_create(s, 0, name, value, visibility, desc);
	else if (strcmp(kind, "update_secret") == 0)
		rc = add_update(s, 0, name, value, visibility, desc);
	else if (strcmp(kind, "delete_secret") == 0)
		rc = add_delete(s, 0, name);
	else
		rc = add_override(s, 0, env, cli_version(version), secret,
		                  strcmp(kind, "set_override") == 0 ? value : NULL);
	return rc ? cli_usage_error(c, "out of memory") : 0;
}

/* The top of a changes file: an array of changes, or an object of "changes" and
 * "expected_revision" (a whole number, 0 or more) and nothing else. *list is the array. */
static int read_top(struct cli *c, struct set *s, const char *file, json_t *doc, json_t **list)
{
	*list = doc;
	if (json_is_array(doc))
		return 0;
	if (!json_is_object(doc))
		return cli_usage_error(
		        c, "%s: a JSON array of changes, or an object with \"changes\"", file);
	const char *key;
	json_t *v;
	json_object_foreach(doc, key, v)
	{
		if (strcmp(key, "changes") != 0 && strcmp(key, "expected_revision") != 0)
			return cli_usage_error(
			        c, "%s: unknown field \"%s\" (changes, expected_revision)", file,
			        key);
	}
	*list = json_object_get(doc, "changes");
	json_t *expected = json_object_get(doc, "expected_revision");
	if (expected && (!json_is_integer(expected) || json_integer_value(expected) < 0))
		return cli_usage_error(
		        c, "%s: expected_revision is a whole number (0: do not check)", file);
	if (expected && s->req.expected_revision == 0) /* --expected-revision wins */
		s->req.expected_revision = json_integer_value(expected);
	if (!json_is_array(*list))
		return cli_usage_error(
		        c, "%s: a JSON array of changes, or an object with \"changes\"", file);
	return 0;
}

/* ---- sending it ---- */

/* Sends s and prints what it did (or would do); the exit status. A refused change of an import
 * is named by its file line too. */
static int send_set(struct cli *c, struct set *s, const char *file)
{
	Coffer__V1__ApplyChangesResponse *r = NULL;
	coffer_error err;
	if (coffer_v1_secrets_apply_changes(c->ch, &s->req, &r, &err) != 0) {
		size_t index;
		if (file && s->line && sscanf(err.message, "change %zu ", &index) == 1 &&
		    index < s->req.n_changes && s->line[index] > 0)
			fprintf(stderr, "coffer: %s line %d: nothing was written\n", file,
			        s->line[index]);
		return cli_rpc_error(&err);
	}
	if (c->json) {
		printf("{\"applied\":%s,\"revision\":%" PRId64 ",\"results\":[",
		       r->applied ? "true" : "false", r->revision);
		for (size_t i = 0; i < r->n_results; i++) {
			const Coffer__V1__ChangeResult *x = r->results[i];
			printf("%s{\"index\":%d,\"kind\":\"%s\",\"secret\":", i ? "," : "",
			       x->index, cli_kind_name(x->kind));
			cli_json_str(x->secret);
			printf(",\"environment\":");
			cli_json_str(x->environment);
			printf(",\"version\":\"%s\"}",
			       x->version ? cli_version_name(x->version) : "");
		}
		puts("]}");
	} else {
		for (size_t i = 0; i < r->n_results; i++) {
			const Coffer__V1__ChangeResult *x = r->results[i];
			if (*x->environment)
				printf("%-8s %-40s %s %s\n", cli_kind_name(x->kind), x->secret,
				       x->environment, cli_version_name(x->version));
			else
				printf("%-8s %s\n", cli_kind_name(x->kind), x->secret);
		}
		printf("%s: %zu change%s %s revision %" PRId64 "\n",
		       r->applied ? "applied" : "dry run", r->n_results,
		       r->n_results == 1 ? "" : "s", r->applied ? "at" : "would make", r->revision);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

static int common_options(struct cli *c, struct set *s)
{
	s->req.project = c->argv[0];
	s->req.dry_run = cli_opt(c, "--dry-run") != NULL;
	return cli_expected_revision(c, &s->req.expected_revision);
}

int cmd_apply(struct cli *c)
{
	const char *file = cli_opt(c, "--file");
	if (file == NULL || *file == '\0')
		return cli_usage_error(c, "-f FILE names the changes (\"-\": standard input)");
	struct set s = {.req = COFFER__V1__APPLY_CHANGES_REQUEST__INIT};
	int rc = common_options(c, &s);
	if (rc)
		return rc;
	size_t len = 0;
	char *text = read_all(file, &len);
	if (text == NULL)
		return 1;
	json_set_alloc_funcs(json_alloc, json_release);
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	drop_text(text, len);
	if (doc == NULL) {
		/* jansson's text can quote the input: say where, not what. */
		fprintf(stderr, "coffer: %s: not valid JSON at line %d, column %d\n", file,
		        jerr.line, jerr.column);
		return 2;
	}
	json_t *list = NULL;
	rc = read_top(c, &s, file, doc, &list);
	for (size_t i = 0; rc == 0 && i < json_array_size(list); i++)
		rc = read_change(c, &s, i, json_array_get(list, i));
	if (rc == 0)
		rc = send_set(c, &s, NULL);
	set_free(&s);
	json_decref(doc);
	return rc;
}

/* ---- import ---- */

/* The secrets a project has now (their names), to create or update each imported one. */
static int existing_names(struct cli *c, const char *project, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	size_t cap = 0;
	char *token = NULL;
	do {
		Coffer__V1__ListSecretsRequest req = COFFER__V1__LIST_SECRETS_REQUEST__INIT;
		req.project = (char *)project;
		req.page_size = 500;
		req.page_token = token ? token : "";
		Coffer__V1__ListSecretsResponse *r = NULL;
		coffer_error err;
		if (coffer_v1_secrets_list_secrets(c->ch, &req, &r, &err) != 0) {
			free(token);
			return cli_rpc_error(&err);
		}
		for (size_t i = 0; i < r->n_secrets; i++) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 64;
				char **nn = realloc(*names, cap * sizeof(*nn));
				if (nn == NULL)
					break;
				*names = nn;
			}
			(*names)[(*n)++] = strdup(r->secrets[i]->name);
		}
		free(token);
		token = *r->next_page_token ? strdup(r->next_page_token) : NULL;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} while (token);
	return 0;
}

static bool has_name(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* A JSON object of "NAME": "value" (what coffer export --format json prints) as pairs. */
static int json_pairs(struct cli *c, const char *file, const char *text, size_t len,
                      struct env_pair **out, size_t *n)
{
	json_set_alloc_funcs(json_alloc, json_release);
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		fprintf(stderr,
		        "coffer: %s: not valid JSON at line %d, column %d (a name set twice "
		        "is refused too)\n",
		        file, jerr.line, jerr.column);
		return 2;
	}
	int rc = 0;
	if (!json_is_object(doc))
		rc = cli_usage_error(c, "%s: a JSON object of \"NAME\": \"value\"", file);
	*out = calloc(json_object_size(doc) + 1, sizeof(**out));
	*n = 0;
	const char *key;
	json_t *v;
	json_object_foreach(doc, key, v)
	{
		if (rc || *out == NULL)
			break;
		if (!json_is_string(v)) {
			rc = cli_usage_error(c, "%s: the value of %s is not a string", file, key);
			break;
		}
		(*out)[*n] = (struct env_pair){strdup(key), strdup(json_string_value(v)), 0};
		(*n)++;
	}
	json_decref(doc);
	if (rc || *out == NULL) {
		dotenv_free(*out, *n);
		*out = NULL;
		*n = 0;
		return rc ? rc : cli_usage_error(c, "out of memory");
	}
	return 0;
}

int cmd_secrets_import(struct cli *c)
{
	const char *project = c->argv[0], *file = c->argv[1];
	const char *format = cli_opt(c, "--format");
	const char *env = cli_opt(c, "--env"), *version = cli_opt(c, "--version");
	if (format == NULL) {
		size_t l = strlen(file);
		format = l > 5 && strcmp(file + l - 5, ".json") == 0 ? "json" : "dotenv";
	}
	if (strcmp(format, "dotenv") != 0 && strcmp(format, "json") != 0)
		return cli_usage_error(c, "--format must be dotenv or json");
	if ((env == NULL) != (version == NULL) || (version && cli_version(version) == 0))
		return cli_usage_error(c, "--env E and --version draft|live go together");
	bool restricted = cli_opt(c, "--restricted") != NULL;
	if (restricted && env)
		return cli_usage_error(c, "--restricted is for secrets, not for an environment's "
		                          "overrides");
	struct set s = {.req = COFFER__V1__APPLY_CHANGES_REQUEST__INIT};
	int rc = common_options(c, &s);
	if (rc)
		return rc;
	size_t len = 0;
	char *text = read_all(file, &len);
	if (text == NULL)
		return 1;
	struct env_pair *pairs = NULL;
	size_t n = 0;
	if (strcmp(format, "json") == 0) {
		rc = json_pairs(c, file, text, len, &pairs, &n);
	} else {
		char why[320];
		if (dotenv_parse(text, len, &pairs, &n, why, sizeof(why)) != 0) {
			fprintf(stderr, "coffer: %s %s; nothing was written\n", file, why);
			rc = 2;
		}
	}
	drop_text(text, len);
	if (rc == 0 && n == 0)
		rc = cli_usage_error(c, "%s holds no NAME=value", file);
	char **names = NULL;
	size_t n_names = 0;
	if (rc == 0 && env == NULL)
		rc = existing_names(c, project, &names, &n_names);
	int vis = restricted ? COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED : 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct env_pair *e = &pairs[i];
		int added = env ? add_override(&s, e->line, env, cli_version(version), e->name,
		                               e->value)
		            : has_name(names, n_names, e->name)
		                    ? add_update(&s, e->line, e->name, e->value, vis, NULL)
		                    : add_create(&s, e->line, e->name, e->value, vis, NULL);
		if (added != 0)
			rc = cli_usage_error(c, "out of memory");
	}
	if (rc == 0)
		rc = send_set(c, &s, file);
	set_free(&s);
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	dotenv_free(pairs, n);
	return rc;
}
