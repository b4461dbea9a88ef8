/*
 * coffer - the command-line client, built on libcoffer.
 *
 *   coffer [--addr A] [--token T] [--ca-file F] [--timeout-ms N] [--json] COMMAND [ARGS]
 *
 * Tables for people, --json for scripts. Values are read from standard input or a file so that
 * they need not appear in argv or shell history. Exit status: 0 on success; 1 with
 * "coffer: CODE: message" on stderr when the server refuses; 2 on a usage error; `coffer run`
 * exits with the program's status (127 when it cannot be started).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const FLAGS[] = {"--json",    "--restricted",    "--value-stdin",
                                    "--dry-run", "--delete-source", NULL};

static void usage(FILE *out)
{
	fputs("usage: coffer [--addr HOST:PORT] [--token T] [--ca-file F [--cert-file F --key-file F]]\n"
	      "              [--timeout-ms N] [--json] COMMAND [ARGS]\n\n"
	      "  projects create NAME [--description D]\n"
	      "  projects get NAME | list | delete NAME [--expected-revision R]\n"
	      "  secrets create PROJECT NAME (--value-stdin | --value-file F) [--restricted]\n"
	      "                 [--description D]\n"
	      "  secrets get PROJECT NAME | list PROJECT\n"
	      "  secrets update PROJECT NAME [--value-stdin | --value-file F] [--description D]\n"
	      "                 [--restricted] [--expected-revision R]\n"
	      "  secrets delete PROJECT NAME [--expected-revision R]\n"
	      "  secrets reveal PROJECT NAME [--env E --version draft|live]\n"
	      "  envs create PROJECT NAME [--description D]\n"
	      "  envs get PROJECT NAME | list PROJECT | delete PROJECT NAME [--expected-revision "
	      "R]\n"
	      "  overrides set PROJECT ENV draft|live SECRET (--value-stdin | --value-file F)\n"
	      "                [--expected-revision R]\n"
	      "  overrides delete PROJECT ENV draft|live SECRET [--expected-revision R]\n"
	      "  overrides list PROJECT ENV [--version draft|live]\n"
	      "  merge PROJECT SOURCE [--into TARGET] [--dry-run] [--delete-source]\n"
	      "        [--expected-source-revision R] [--expected-target-revision R]\n"
	      "  resolve --project P --env E --version draft|live [--only A,B] [--at-revision R]\n"
	      "  run --project P --env E --version draft|live [--only A,B] -- CMD [ARGS...]\n"
	      "  export --project P --env E --version draft|live [--format dotenv|json]\n"
	      "  render --project P --env E --version draft|live < TEMPLATE\n"
	      "  tokens create NAME --role admin|editor|viewer|runtime [--project P]\n"
	      "                [--envs A,B] [--versions draft,live] [--ttl SECONDS]\n"
	      "  tokens list [--project P] | revoke ID\n"
	      "  audit [--project P] [--since-minutes N]\n\n"
	      "Environment: COFFER_ADDR (default 127.0.0.1:50051), COFFER_TOKEN, COFFER_CA_FILE,\n"
	      "COFFER_CERT_FILE, COFFER_KEY_FILE.\n",
	      out);
}

static bool is_flag(const char *name)
{
	for (int i = 0; FLAGS[i]; i++)
		if (strcmp(FLAGS[i], name) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	coffer_options o;
	coffer_options_init(&o);
	o.timeout_ms = 30000;
	struct cli c = {0};
	char *pos[32];
	int n_pos = 0;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			c.command = argv + i + 1;
			c.n_command = argc - i - 1;
			break;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strncmp(a, "--", 2) != 0) {
			if (n_pos == 32)
				return cli_usage_error("too many arguments");
			pos[n_pos++] = a;
			continue;
		}
		char *eq = strchr(a, '=');
		const char *value = NULL;
		if (eq) {
			*eq = '\0';
			value = eq + 1;
		} else if (is_flag(a)) {
			value = "";
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			return cli_usage_error("%s needs a value", a);
		}
		if (strcmp(a, "--addr") == 0)
			o.target = value;
		else if (strcmp(a, "--token") == 0)
			o.token = value;
		else if (strcmp(a, "--ca-file") == 0)
			o.ca_file = value;
		else if (strcmp(a, "--cert-file") == 0)
			o.cert_file = value;
		else if (strcmp(a, "--key-file") == 0)
			o.key_file = value;
		else if (strcmp(a, "--timeout-ms") == 0)
			o.timeout_ms = atoi(value);
		else if (strcmp(a, "--json") == 0)
			c.json = true;
		else if (c.n_opts < CLI_MAX_OPTS)
			c.opts[c.n_opts++] = (struct cli_opt){a, value};
		else
			return cli_usage_error("too many options");
	}
	if (n_pos < 1) {
		usage(stderr);
		return 2;
	}
	static const char *const grouped[] = {"projects",  "secrets", "envs",
	                                      "overrides", "tokens",  NULL};
	int words = 1;
	for (int g = 0; grouped[g]; g++)
		if (strcmp(pos[0], grouped[g]) == 0)
			words = 2;
	if (n_pos < words)
		return cli_usage_error("%s needs a verb", pos[0]);
	coffer_error err;
	if (coffer_client_new(&o, &c.client, &err) != 0)
		return cli_rpc_error(&err);
	c.ch = coffer_client_channel(c.client);
	c.argc = n_pos - words;
	c.argv = pos + words;
	const char *cmd = pos[0], *verb = words == 2 ? pos[1] : "";
	int rc;
	if (strcmp(cmd, "projects") == 0)
		rc = cmd_projects(&c, verb);
	else if (strcmp(cmd, "secrets") == 0)
		rc = cmd_secrets(&c, verb);
	else if (strcmp(cmd, "envs") == 0)
		rc = cmd_envs(&c, verb);
	else if (strcmp(cmd, "overrides") == 0)
		rc = cmd_overrides(&c, verb);
	else if (strcmp(cmd, "merge") == 0)
		rc = cmd_merge(&c);
	else if (strcmp(cmd, "resolve") == 0)
		rc = cmd_resolve(&c);
	else if (strcmp(cmd, "run") == 0)
		rc = cmd_run(&c);
	else if (strcmp(cmd, "export") == 0)
		rc = cmd_export(&c);
	else if (strcmp(cmd, "render") == 0)
		rc = cmd_render(&c);
	else if (strcmp(cmd, "tokens") == 0)
		rc = cmd_tokens(&c, verb);
	else if (strcmp(cmd, "audit") == 0)
		rc = cmd_audit(&c);
	else
		rc = cli_usage_error("unknown command '%s'", cmd);
	coffer_client_free(c.client);
	return rc;
}
