/*
 * runtime.c - what runtimes use: coffer resolve, coffer run, coffer export, coffer render.
 * Each takes --project P --env E --version draft|live.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Reads --project, --env and --version; 0 or a usage error's status. */
static int target_of(const struct cli *c, const char **project, const char **env, int *version)
{
	*project = cli_opt(c, "--project");
	*env = cli_opt(c, "--env");
	*version = cli_version(cli_opt(c, "--version"));
	if (*project == NULL || *env == NULL || *version == 0)
		return cli_usage_error(c, "--project, --env and --version draft|live are required");
	return 0;
}

/* Splits "A,B,C" into a NULL-terminated malloc'd array of pointers into a copy of s. */
static char **split_names(const char *s, size_t *n, char **copy)
{
	*n = 0;
	*copy = strdup(s ? s : "");
	char **out = calloc(strlen(*copy) / 2 + 2, sizeof(*out));
	if (*copy == NULL || out == NULL)
		return out;
	for (char *save = NULL, *tok = strtok_r(*copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		out[(*n)++] = tok;
	return out;
}

int cmd_resolve(struct cli *c)
{
	const char *project, *env;
	int version, rc;
	bool ok = true;
	if ((rc = target_of(c, &project, &env, &version)))
		return rc;
	Coffer__V1__ResolveSecretsRequest req = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	req.project = (char *)project;
	req.environment = (char *)env;
	req.version = (Coffer__V1__Version)version;
	req.at_revision = cli_opt_i64(c, "--at-revision", 0, &ok);
	req.min_revision = cli_opt_i64(c, "--min-revision", 0, &ok);
	if (!ok)
		return cli_usage_error(c, "revisions must be numbers");
	char *copy = NULL;
	size_t n = 0;
	char **names = split_names(cli_opt(c, "--only"), &n, &copy);
	req.names = names;
	req.n_names = n;
	Coffer__V1__ResolveSecretsResponse *r = NULL;
	coffer_error err;
	rc = coffer_v1_secrets_resolve_secrets(c->ch, &req, &r, &err);
	free(names);
	free(copy);
	if (rc != 0)
		return cli_rpc_error(&err);
	if (c->json) {
		printf("{\"revision\":%" PRId64 ",\"secrets\":[", r->revision);
		for (size_t i = 0; i < r->n_secrets; i++) {
			const Coffer__V1__ResolvedSecret *s = r->secrets[i];
			printf("%s{\"name\":", i ? "," : "");
			cli_json_str(s->name);
			printf(",\"value\":");
			cli_json_str(s->value);
			printf(",\"visibility\":\"%s\",\"source\":\"%s\",\"revision\":%" PRId64 "}",
			       cli_visibility_name(s->visibility), cli_source_name(s->source),
			       s->revision);
		}
		printf("],\"missing\":[");
		for (size_t i = 0; i < r->n_missing; i++) {
			printf("%s", i ? "," : "");
			cli_json_str(r->missing[i]);
		}
		puts("]}");
	} else {
		printf("%-40s %-10s %-8s %s\n", "NAME", "VISIBILITY", "SOURCE", "REVISION");
		for (size_t i = 0; i < r->n_secrets; i++) {
			const Coffer__V1__ResolvedSecret *s = r->secrets[i];
			printf("%-40s %-10s %-8s %" PRId64 "\n", s->name,
			       cli_visibility_name(s->visibility), cli_source_name(s->source),
			       s->revision);
		}
		for (size_t i = 0; i < r->n_missing; i++)
			printf("%-40s (missing)\n", r->missing[i]);
		printf("project revision %" PRId64
		       "; values are not shown (use coffer export or run)\n",
		       r->revision);
	}
	for (size_t i = 0; i < r->n_secrets; i++)
		memset(r->secrets[i]->value, 0, strlen(r->secrets[i]->value));
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

static int resolve_snapshot(struct cli *c, coffer_snapshot **snap)
{
	const char *project, *env;
	int version, rc;
	if ((rc = target_of(c, &project, &env, &version)))
		return rc;
	coffer_error err;
	if (coffer_resolve(c->client, project, env, (coffer_version)version, snap, &err) != 0)
		return cli_rpc_error(&err);
	return 0;
}

/* Variables that change how a program, its loader, shell or interpreter runs, or whom it trusts:
 * a secret with such a name could run code on every host that starts a program with it. */
static const char *const risky_names[] = {"PATH",
                                          "IFS",
                                          "ENV",
                                          "BASH_ENV",
                                          "SHELLOPTS",
                                          "BASHOPTS",
                                          "PS4",
                                          "PROMPT_COMMAND",
                                          "CDPATH",
                                          "GLOBIGNORE",
                                          "SHELL",
                                          "HOME",
                                          "TMPDIR",
                                          "GCONV_PATH",
                                          "GLIBC_TUNABLES",
                                          "HOSTALIASES",
                                          "LOCALDOMAIN",
                                          "RES_OPTIONS",
                                          "NLSPATH",
                                          "LOCPATH",
                                          "TZDIR",
                                          "CLASSPATH",
                                          "JAVA_TOOL_OPTIONS",
                                          "_JAVA_OPTIONS",
                                          "JDK_JAVA_OPTIONS",
                                          "EDITOR",
                                          "VISUAL",
                                          "PAGER",
                                          "SSL_CERT_FILE",
                                          "SSL_CERT_DIR",
                                          "CURL_CA_BUNDLE",
                                          "REQUESTS_CA_BUNDLE",
                                          "NODE_EXTRA_CA_CERTS",
                                          NULL};
static const char *const risky_prefixes[] = {"LD_",    "DYLD_", "MALLOC_", "BASH_FUNC_",
                                             "PYTHON", "PERL",  "RUBY",    "NODE_",
                                             "GIT_",   "LUA_",  "COFFER_", NULL};

static bool risky(const char *name)
{
	for (const char *const *r = risky_names; *r; r++)
		if (strcmp(name, *r) == 0)
			return true;
	for (const char *const *p = risky_prefixes; *p; p++)
		if (strncmp(name, *p, strlen(*p)) == 0)
			return true;
	return false;
}

/* Whether name is in the comma-separated --allow-names list. */
static bool allowed(const struct cli *c, const char *name)
{
	const char *list = cli_opt(c, "--allow-names");
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p = end ? end + 1 : p + len;
	}
	return false;
}

/* Refuses (1, said on stderr) a name that would set a risky variable unless --allow-names lists
 * it; 0 otherwise. */
static int refuse_risky(const struct cli *c, const char *name)
{
	if (!risky(name) || allowed(c, name))
		return 0;
	fprintf(stderr,
	        "coffer: secret \"%s\" would set the environment variable %s, which changes how "
	        "programs run; nothing was %s. Pass --allow-names %s if it is meant to.\n",
	        name, name, c->command ? "started" : "printed", name);
	return 1;
}

int cmd_run(struct cli *c)
{
	coffer_snapshot *snap = NULL;
	int rc = resolve_snapshot(c, &snap);
	if (rc)
		return rc;
	char *copy = NULL;
	size_t n_only = 0;
	char **only = split_names(cli_opt(c, "--only"), &n_only, &copy);
	/* Every name is checked before any is set: a refused name starts nothing. */
	for (size_t i = 0; i < n_only && rc == 0; i++)
		rc = refuse_risky(c, only[i]);
	for (size_t i = 0; n_only == 0 && i < coffer_snapshot_count(snap) && rc == 0; i++)
		rc = refuse_risky(c, coffer_snapshot_name(snap, i));
	for (size_t i = 0; i < n_only && rc == 0; i++) {
		const char *v = coffer_snapshot_get(snap, only[i]);
		if (v == NULL) {
			fprintf(stderr, "coffer: NOT_FOUND: secret \"%s\" is not in the snapshot\n",
			        only[i]);
			rc = 1;
		} else if (setenv(only[i], v, 1) != 0) {
			rc = 1;
		}
	}
	for (size_t i = 0; n_only == 0 && i < coffer_snapshot_count(snap) && rc == 0; i++) {
		const char *name = coffer_snapshot_name(snap, i);
		if (setenv(name, coffer_snapshot_get(snap, name), 1) != 0)
			rc = 1;
	}
	free(only);
	free(copy);
	coffer_snapshot_free(snap);
	if (rc)
		return rc;
	/* The child gets the secrets, not the credential that fetched them. */
	unsetenv("COFFER_TOKEN");
	coffer_client_free(c->client);
	c->client = NULL;
	fflush(NULL);
	execvp(c->command[0], c->command);
	fprintf(stderr, "coffer: cannot run %s: %s\n", c->command[0], strerror(errno));
	return 127;
}

/* dotenv: NAME="value" with \\, \", \$ and newlines escaped. */
static void dotenv_value(const char *v)
{
	putchar('"');
	for (; *v; v++) {
		if (*v == '\n')
			fputs("\\n", stdout);
		else if (*v == '\r')
			fputs("\\r", stdout);
		else if (*v == '"' || *v == '\\' || *v == '$' || *v == '`')
			printf("\\%c", *v);
		else
			putchar(*v);
	}
	putchar('"');
}

int cmd_export(struct cli *c)
{
	const char *format = cli_opt(c, "--format") ? cli_opt(c, "--format") : "dotenv";
	if (strcmp(format, "dotenv") != 0 && strcmp(format, "json") != 0)
		return cli_usage_error(c, "--format must be dotenv or json");
	coffer_snapshot *snap = NULL;
	int rc = resolve_snapshot(c, &snap);
	if (rc)
		return rc;
	for (size_t i = 0; i < coffer_snapshot_count(snap) && rc == 0; i++)
		rc = refuse_risky(c, coffer_snapshot_name(snap, i));
	if (rc) {
		coffer_snapshot_free(snap);
		return rc;
	}
	bool json = strcmp(format, "json") == 0;
	if (json)
		putchar('{');
	for (size_t i = 0; i < coffer_snapshot_count(snap); i++) {
		const char *name = coffer_snapshot_name(snap, i);
		if (json) {
			printf("%s", i ? "," : "");
			cli_json_str(name);
			putchar(':');
			cli_json_str(coffer_snapshot_get(snap, name));
		} else {
			printf("%s=", name);
			dotenv_value(coffer_snapshot_get(snap, name));
			putchar('\n');
		}
	}
	if (json)
		puts("}");
	coffer_snapshot_free(snap);
	return 0;
}

int cmd_render(struct cli *c)
{
	size_t len = 0, cap = 4096;
	char *tmpl = malloc(cap);
	size_t n;
	while (tmpl && (n = fread(tmpl + len, 1, cap - len - 1, stdin)) > 0) {
		len += n;
		if (len + 1 == cap) {
			char *bigger = realloc(tmpl, cap *= 2);
			if (bigger == NULL)
				free(tmpl);
			tmpl = bigger;
		}
	}
	if (tmpl == NULL)
		return cli_usage_error(c, "out of memory");
	tmpl[len] = '\0';
	coffer_snapshot *snap = NULL;
	int rc = resolve_snapshot(c, &snap);
	if (rc == 0) {
		char *out = NULL;
		coffer_error err;
		if (coffer_snapshot_render(snap, tmpl, &out, &err) != 0) {
			rc = cli_rpc_error(&err);
		} else {
			fputs(out, stdout);
			cli_free_value(out);
		}
	}
	coffer_snapshot_free(snap);
	free(tmpl);
	return rc;
}
