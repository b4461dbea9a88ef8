/*
 * runtime.c - the commands runtimes use: coffer resolve, run, export, render and watch. What they
 * resolve is target.c's; the environment a program gets is program_env.c's; run --watch is
 * supervise.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

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
	char **names = cli_split_names(cli_opt(c, "--only"), &n, &copy);
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
	char **names = cli_split_names(cli_opt(c, "--only"), &n, &copy);
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
