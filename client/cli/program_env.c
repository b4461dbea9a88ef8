/*
 * program_env.c - the environment a program started by coffer run gets: ours without
 * COFFER_TOKEN, and the secrets (or --only's); a secret whose name would change how programs run
 * (PATH, LD_PRELOAD, ...) is refused unless --allow-names lists it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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
int cli_refuse_risky(const struct cli *c, const char *name)
{
	if (!risky(name) || allowed(c, name))
		return 0;
	fprintf(stderr,
	        "coffer: secret \"%s\" would set the environment variable %s, which changes how "
	        "programs run; nothing was %s. Pass --allow-names %s if it is meant to.\n",
	        name, name, c->command ? "started" : "printed", name);
	return 1;
}

/* Adds NAME=value to env (replacing NAME's earlier entry); false when out of memory. */
static bool env_put(char ***env, size_t *n, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	char *entry = malloc(nl + vl + 2);
	if (entry == NULL)
		return false;
	memcpy(entry, name, nl);
	entry[nl] = '=';
	memcpy(entry + nl + 1, value, vl + 1);
	for (size_t i = 0; i < *n; i++)
		if (strncmp((*env)[i], name, nl) == 0 && (*env)[i][nl] == '=') {
			cli_free_value((*env)[i]);
			(*env)[i] = entry;
			return true;
		}
	char **grown = realloc(*env, (*n + 2) * sizeof(char *));
	if (grown == NULL) {
		cli_free_value(entry);
		return false;
	}
	*env = grown;
	(*env)[(*n)++] = entry;
	(*env)[*n] = NULL;
	return true;
}

void cli_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		cli_free_value(env[i]);
	free(env);
}

int cli_program_env(const struct cli *c, const coffer_snapshot *snap, char ***out)
{
	extern char **environ;
	*out = NULL;
	char *copy = NULL;
	size_t n_only = 0, n = 0;
	char **only = cli_split_names(cli_opt(c, "--only"), &n_only, &copy);
	int rc = 0;
	/* Every name is checked before any is set: a refused name starts nothing. */
	for (size_t i = 0; i < n_only && rc == 0; i++)
		rc = cli_refuse_risky(c, only[i]);
	for (size_t i = 0; n_only == 0 && i < coffer_snapshot_count(snap) && rc == 0; i++)
		rc = cli_refuse_risky(c, coffer_snapshot_name(snap, i));
	char **env = calloc(1, sizeof(char *));
	if (env == NULL)
		rc = 1;
	/* The program gets the secrets, not the credential that fetched them. */
	for (char **e = environ; rc == 0 && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (eq == NULL || strncmp(*e, "COFFER_TOKEN=", 13) == 0)
			continue;
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
		if (!env_put(&env, &n, name, eq + 1))
			rc = 1;
	}
	for (size_t i = 0; i < n_only && rc == 0; i++) {
		const char *v = coffer_snapshot_get(snap, only[i]);
		if (v == NULL) {
			fprintf(stderr, "coffer: NOT_FOUND: secret \"%s\" is not in the snapshot\n",
			        only[i]);
			rc = 1;
		} else if (!env_put(&env, &n, only[i], v)) {
			rc = 1;
		}
	}
	for (size_t i = 0; n_only == 0 && i < coffer_snapshot_count(snap) && rc == 0; i++) {
		const char *name = coffer_snapshot_name(snap, i);
		if (!env_put(&env, &n, name, coffer_snapshot_get(snap, name)))
			rc = 1;
	}
	free(only);
	free(copy);
	if (rc) {
		cli_env_free(env);
		return rc;
	}
	*out = env;
	return 0;
}
