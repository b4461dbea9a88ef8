/*
 * runtime.c - what runtimes use: coffer resolve, run, export, render and watch.
 *
 * What to resolve comes from --project, --env and --version, else from COFFER_PROJECT,
 * COFFER_ENV and COFFER_VERSION, else from the runtime token's own scope when it names exactly one
 * project, environment and version (Access/WhoAmI): a pod then needs only its token.
 */
#include <errno.h>
#include <inttypes.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* What a runtime command resolves, from its flags, the environment or the token's scope: 0, or
 * the status to exit with. */
int cli_target(struct cli *c, struct cli_target *t)
{
	memset(t, 0, sizeof(*t));
	const char *p = cli_opt(c, "--project"), *e = cli_opt(c, "--env"),
	           *v = cli_opt(c, "--version");
	if (p == NULL)
		p = getenv("COFFER_PROJECT");
	if (e == NULL)
		e = getenv("COFFER_ENV");
	if (v == NULL)
		v = getenv("COFFER_VERSION");
	if (v && cli_version(v) == 0)
		return cli_usage_error(c, "--version (or COFFER_VERSION) must be draft or live");
	if (!(p && *p && e && *e && v && *v)) {
		/* Ask the token what it may resolve (only when something is missing, and never
		 * with --fallback-only: no call then). */
		Coffer__V1__WhoAmIRequest req = COFFER__V1__WHO_AM_IREQUEST__INIT;
		Coffer__V1__Token *tok = NULL;
		coffer_error err;
		if (cli_opt(c, "--fallback-only") == NULL &&
		    coffer_v1_access_who_am_i(c->ch, &req, &tok, &err) == 0) {
			if (tok->role == COFFER__V1__ROLE__ROLE_RUNTIME && *tok->project) {
				if (!(p && *p))
					snprintf(t->project_buf, sizeof(t->project_buf), "%s",
					         tok->project);
				if (!(e && *e) && tok->n_environments == 1)
					snprintf(t->env_buf, sizeof(t->env_buf), "%s",
					         tok->environments[0]);
				if (!(v && *v) && tok->n_versions == 1)
					t->version = tok->versions[0];
			}
			protobuf_c_message_free_unpacked(&tok->base, NULL);
		}
	}
	t->project = p && *p ? p : t->project_buf[0] ? t->project_buf : NULL;
	t->env = e && *e ? e : t->env_buf[0] ? t->env_buf : NULL;
	if (v && *v)
		t->version = cli_version(v);
	/* cofferd could not say (it cannot be reached): the fallback snapshot says what it holds,
	 * and opening it checks that again. */
	coffer_fallback_info info;
	coffer_error ferr;
	if ((t->project == NULL || t->env == NULL || t->version == 0) && cli_opt(c, "--fallback") &&
	    coffer_fallback_describe(cli_opt(c, "--fallback"), &info, &ferr) == 0) {
		if (t->project == NULL) {
			snprintf(t->project_buf, sizeof(t->project_buf), "%s", info.project);
			t->project = t->project_buf;
		}
		if (t->env == NULL) {
			snprintf(t->env_buf, sizeof(t->env_buf), "%s", info.environment);
			t->env = t->env_buf;
		}
		if (t->version == 0)
			t->version = info.version;
	}
	if (t->project == NULL || t->env == NULL || t->version == 0)
		return cli_usage_error(c, "--project, --env and --version draft|live are required "
		                          "(or COFFER_PROJECT, COFFER_ENV and COFFER_VERSION, or a "
		                          "runtime token whose scope names one of each)");
	return 0;
}

/* Reads the fallback options into fb (path NULL: none); 0 or a usage error's status. */
int cli_fallback(struct cli *c, coffer_fallback *fb)
{
	memset(fb, 0, sizeof(*fb));
	fb->path = cli_opt(c, "--fallback");
	fb->passphrase_file = cli_opt(c, "--passphrase-file");
	fb->only = cli_opt(c, "--fallback-only") != NULL;
	const char *age = cli_opt(c, "--fallback-max-age");
	if (age && !cli_duration_ms(age, &fb->max_age_seconds))
		return cli_usage_error(c, "--fallback-max-age takes a duration (90s, 10m, 24h)");
	fb->max_age_seconds /= 1000;
	if (fb->path == NULL && (fb->only || fb->passphrase_file || age))
		return cli_usage_error(c, "--fallback-only, --passphrase-file and "
		                          "--fallback-max-age go with --fallback FILE");
	return 0;
}

/* Resolves t, through the fallback snapshot when one is given: 0, or the status to exit with. */
int cli_resolve(struct cli *c, const struct cli_target *t, const coffer_fallback *fb,
                coffer_snapshot **snap)
{
	coffer_error err;
	int from_fallback = 0;
	if (coffer_resolve_fallback(c->client, t->project, t->env, (coffer_version)t->version,
	                            fb->path ? fb : NULL, snap, &from_fallback, &err) != 0)
		return cli_rpc_error(&err);
	if (from_fallback) {
		char when[32];
		time_t at = (time_t)coffer_snapshot_time(*snap);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&at));
		fprintf(stderr,
		        "coffer: cofferd %s: using the fallback snapshot %s (revision %lld, "
		        "written "
		        "%s)\n",
		        fb->only ? "not asked (--fallback-only)" : "cannot be reached", fb->path,
		        (long long)coffer_snapshot_revision(*snap), when);
	}
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
	struct cli_target t;
	int rc;
	bool ok = true;
	if ((rc = cli_target(c, &t)))
		return rc;
	Coffer__V1__ResolveSecretsRequest req = COFFER__V1__RESOLVE_SECRETS_REQUEST__INIT;
	req.project = (char *)t.project;
	req.environment = (char *)t.env;
	req.version = (Coffer__V1__Version)t.version;
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
	struct cli_target t;
	coffer_fallback fb;
	int rc;
	if ((rc = cli_target(c, &t)) || (rc = cli_fallback(c, &fb)))
		return rc;
	return cli_resolve(c, &t, &fb, snap);
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
	char **only = split_names(cli_opt(c, "--only"), &n_only, &copy);
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

int cmd_run(struct cli *c)
{
	if (cli_opt(c, "--watch"))
		return cli_supervise(c);
	if (cli_opt(c, "--on-change") || cli_opt(c, "--restart-timeout") ||
	    cli_opt(c, "--restart-jitter"))
		return cli_usage_error(c, "--on-change, --restart-timeout and --restart-jitter go "
		                          "with --watch");
	coffer_snapshot *snap = NULL;
	int rc = resolve_snapshot(c, &snap);
	if (rc)
		return rc;
	char **env = NULL;
	rc = cli_program_env(c, snap, &env);
	coffer_snapshot_free(snap);
	if (rc)
		return rc;
	coffer_client_free(c->client);
	c->client = NULL;
	fflush(NULL);
	execvpe(c->command[0], c->command, env);
	fprintf(stderr, "coffer: cannot run %s: %s\n", c->command[0], strerror(errno));
	cli_env_free(env);
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
		rc = cli_refuse_risky(c, coffer_snapshot_name(snap, i));
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

int cmd_watch(struct cli *c)
{
	struct cli_target t;
	int rc;
	bool ok = true;
	if ((rc = cli_target(c, &t)))
		return rc;
	int64_t from = cli_opt_i64(c, "--from-revision", 0, &ok);
	if (!ok || from < 0)
		return cli_usage_error(c, "--from-revision takes a revision");
	char *copy = NULL;
	size_t n = 0;
	char **names = split_names(cli_opt(c, "--only"), &n, &copy);
	coffer_watch *w = NULL;
	coffer_error err;
	if (coffer_watch_open(c->ch, t.project, t.env, (coffer_version)t.version,
	                      (const char *const *)names, n, from, &w, &err) != 0) {
		free(names);
		free(copy);
		return cli_rpc_error(&err);
	}
	/* One line per change, flushed at once, until the stream is refused or stdout closes. */
	for (;;) {
		coffer_change ch;
		int got = coffer_watch_next(w, -1, &ch, &err);
		if (got < 0) {
			rc = cli_rpc_error(&err);
			break;
		}
		if (c->json) {
			printf("{\"revision\":%" PRId64 ",\"resync\":%s,\"changed\":[", ch.revision,
			       ch.resync ? "true" : "false");
			for (size_t i = 0; i < ch.n_changed; i++) {
				printf("%s", i ? "," : "");
				cli_json_str(ch.changed[i]);
			}
			puts("]}");
		} else if (ch.resync) {
			printf("%" PRId64 " (resync: everything may have changed)\n", ch.revision);
		} else {
			printf("%" PRId64, ch.revision);
			for (size_t i = 0; i < ch.n_changed; i++)
				printf("%s%s", i ? "," : " ", ch.changed[i]);
			putchar('\n');
		}
		if (fflush(stdout) != 0)
			break;
	}
	coffer_watch_close(w);
	free(names);
	free(copy);
	return rc;
}
