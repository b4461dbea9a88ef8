/*
 * coffer - the command-line client, built on libcoffer.
 *
 *   coffer [--addr A] [--token T] [--ca-file F] [--timeout-ms N] [--json] COMMAND [ARGS]
 *
 * Every command is a row of `commands` below: its words, its arguments, the options it declares,
 * what runs it and one help line. The table drives dispatch, `coffer --help`, `coffer help CMD`
 * and option checking: an option the command does not declare, or a wrong number of arguments, is
 * a usage error (exit 2) before any call is made. Tables for people, --json for scripts. Values
 * are read from standard input or a file so that they never appear in argv or shell history.
 * Exit status: 0 on success; 1 with "coffer: CODE: message" on stderr when the server refuses; 2
 * on a usage error; `coffer run` exits with the program's status (127 when it cannot start).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "cli.h"
#include "coffer_limits.h"
#include "coffer_shared.h"

/* ---- options ---- */

static const struct cli_option o_description = {"--description", "D", "free text"};
static const struct cli_option o_expected = {"--expected-revision", "R",
                                             "refuse (ABORTED) unless it is still at revision R"};
static const struct cli_option o_value_stdin = {"--value-stdin", NULL,
                                                "read the value from standard input"};
static const struct cli_option o_value_file = {"--value-file", "FILE", "read the value from FILE"};
static const struct cli_option o_restricted = {
        "--restricted", NULL, "only runtimes receive it; nobody can reveal it (one way)"};
static const struct cli_option o_env = {"--env", "E", "the environment"};
static const struct cli_option o_version = {"--version", "draft|live", "the version"};
static const struct cli_option o_project = {"--project", "P", "the project"};
static const struct cli_option o_into = {"--into", "TARGET", "merge into TARGET (default main)"};
static const struct cli_option o_dry_run = {"--dry-run", NULL, "report the changes; write nothing"};
static const struct cli_option o_delete_source = {"--delete-source", NULL,
                                                  "delete the source in the same transaction"};
static const struct cli_option o_expected_source = {"--expected-source-revision", "R",
                                                    "refuse unless the source is at revision R"};
static const struct cli_option o_expected_target = {"--expected-target-revision", "R",
                                                    "refuse unless the target is at revision R"};
static const struct cli_option o_only = {"--only", "A,B", "only these secrets"};
static const struct cli_option o_allow = {
        "--allow-names", "A,B", "let these secrets set variables such as LD_PRELOAD or PATH"};
static const struct cli_option o_at = {"--at-revision", "R", "as it was at revision R"};
static const struct cli_option o_min = {"--min-revision", "R",
                                        "wait until the project reaches revision R"};
static const struct cli_option o_format = {"--format", "dotenv|json", "output format"};
static const struct cli_option o_in_format = {"--format", "dotenv|json",
                                              "the file's format (default: by its name; dotenv)"};
static const struct cli_option o_file = {"--file", "FILE",
                                         "the changes, as JSON (-f FILE; \"-\": standard input)"};
static const struct cli_option o_import_restricted = {
        "--restricted", NULL, "create new secrets restricted, and make updated ones restricted"};
static const struct cli_option o_from = {"--from-revision", "R",
                                         "every change after revision R (default: from now)"};
static const struct cli_option o_watch = {
        "--watch", NULL, "start the program again with the new secrets when they change"};
static const struct cli_option o_on_change = {
        "--on-change", "restart|signal:NAME",
        "with --watch: restart the program (default) or send it a signal (signal:HUP)"};
static const struct cli_option o_restart_timeout = {
        "--restart-timeout", "D",
        "with --watch: SIGKILL a program still running D after SIGTERM "
        "(default 10s)"};
static const struct cli_option o_restart_jitter = {
        "--restart-jitter", "D",
        "with --watch: wait a random delay up to D before acting on a change (spreads a fleet)"};
static const struct cli_option o_fallback = {
        "--fallback", "FILE",
        "keep an encrypted snapshot in FILE; use it when cofferd cannot be reached"};
static const struct cli_option o_passphrase = {
        "--passphrase-file", "F", "seal the snapshot with F's passphrase instead of the token"};
static const struct cli_option o_fallback_only = {"--fallback-only", NULL,
                                                  "use the snapshot without asking cofferd"};
static const struct cli_option o_fallback_age = {
        "--fallback-max-age", "D",
        "do not use a snapshot older than D (90s, 10m, 24h; default: any age)"};
static const struct cli_option o_role = {"--role", "admin|editor|viewer|runtime", "its role"};
static const struct cli_option o_envs = {"--envs", "A,B", "runtime tokens: these environments"};
static const struct cli_option o_versions = {"--versions", "draft,live",
                                             "runtime tokens: these versions"};
static const struct cli_option o_ttl = {"--ttl", "SECONDS", "expire after SECONDS"};
static const struct cli_option o_since = {"--since-minutes", "N", "the last N minutes"};

/* Options every command takes; --json is a flag, --help ends in help. */
static const struct cli_option g_addr = {"--addr", "HOST:PORT",
                                         "cofferd's address (default $COFFER_ADDR)"};
static const struct cli_option g_token = {"--token", "T", "bearer token (default $COFFER_TOKEN)"};
static const struct cli_option g_ca = {"--ca-file", "F", "CA bundle: use TLS and verify cofferd"};
static const struct cli_option g_plaintext = {
        "--plaintext", NULL, "no TLS to a server off this host (default $COFFER_PLAINTEXT)"};
static const struct cli_option g_cert = {"--cert-file", "F", "client certificate (mTLS)"};
static const struct cli_option g_key = {"--key-file", "F", "its private key"};
static const struct cli_option g_timeout = {
        "--timeout-ms", "N",
        "deadline of each call (default " LIMIT_TEXT(LIMIT_CLIENT_TIMEOUT_MS) ")"};
static const struct cli_option g_json = {"--json", NULL, "machine-readable output"};
static const struct cli_option g_help = {"--help", NULL, "this text, or a command's"};
static const struct cli_option *const globals[] = {&g_addr, &g_token,     &g_ca,      &g_cert,
                                                   &g_key,  &g_plaintext, &g_timeout, &g_json,
                                                   &g_help, NULL};

#define OPTS(...) ((const struct cli_option *const[]){__VA_ARGS__, NULL})
#define NO_OPTS   ((const struct cli_option *const[]){NULL})
#define TARGET    &o_project, &o_env, &o_version
#define FALLBACK  &o_fallback, &o_passphrase, &o_fallback_only, &o_fallback_age

/* Said with the runtime commands' usage errors. */
#define TARGET_NOTE                                                                                \
	"without --project, --env or --version: COFFER_PROJECT, COFFER_ENV, COFFER_VERSION, or "   \
	"the runtime token's own scope when it names one of each"

static const char VALUES[] = "values are read from --value-stdin or --value-file, never from the "
                             "command line";

static const struct cli_command commands[] = {
        {"projects", "create", "NAME", 1, 1, OPTS(&o_description), cmd_projects_create,
         "create a project (with its environment main)", NULL, false},
        {"projects", "get", "NAME", 1, 1, NO_OPTS, cmd_projects_get, "show a project", NULL, false},
        {"projects", "list", "", 0, 0, NO_OPTS, cmd_projects_list, "list projects", NULL, false},
        {"projects", "delete", "NAME", 1, 1, OPTS(&o_expected), cmd_projects_delete,
         "delete a project and everything in it", NULL, false},
        {"secrets", "create", "PROJECT NAME", 2, 2,
         OPTS(&o_value_stdin, &o_value_file, &o_restricted, &o_description), cmd_secrets_create,
         "create a secret with its default value", VALUES, false},
        {"secrets", "get", "PROJECT NAME", 2, 2, NO_OPTS, cmd_secrets_get,
         "show a secret (never its value)", NULL, false},
        {"secrets", "list", "PROJECT", 1, 1, NO_OPTS, cmd_secrets_list, "list a project's secrets",
         NULL, false},
        {"secrets", "update", "PROJECT NAME", 2, 2,
         OPTS(&o_value_stdin, &o_value_file, &o_description, &o_restricted, &o_expected),
         cmd_secrets_update, "change a secret's default value, description or visibility", VALUES,
         false},
        {"secrets", "delete", "PROJECT NAME", 2, 2, OPTS(&o_expected), cmd_secrets_delete,
         "delete a secret and its overrides", NULL, false},
        {"secrets", "reveal", "PROJECT NAME", 2, 2, OPTS(&o_env, &o_version), cmd_secrets_reveal,
         "print a masked secret's value (default, or an environment's version)", NULL, false},
        {"secrets", "import", "PROJECT FILE", 2, 2,
         OPTS(&o_in_format, &o_env, &o_version, &o_import_restricted, &o_dry_run, &o_expected),
         cmd_secrets_import,
         "create or update the defaults (or set one environment's overrides) from a .env or JSON "
         "file, all in one revision",
         "FILE is NAME=value lines (.env) or a JSON object; \"-\" reads standard input", false},
        {"envs", "create", "PROJECT NAME", 2, 2, OPTS(&o_description), cmd_envs_create,
         "create an environment", NULL, false},
        {"envs", "get", "PROJECT NAME", 2, 2, NO_OPTS, cmd_envs_get, "show an environment", NULL,
         false},
        {"envs", "list", "PROJECT", 1, 1, NO_OPTS, cmd_envs_list, "list a project's environments",
         NULL, false},
        {"envs", "delete", "PROJECT NAME", 2, 2, OPTS(&o_expected), cmd_envs_delete,
         "delete an environment (never main)", NULL, false},
        {"overrides", "set", "PROJECT ENV draft|live SECRET", 4, 4,
         OPTS(&o_value_stdin, &o_value_file, &o_expected), cmd_overrides_set,
         "override a secret in one version of an environment", VALUES, false},
        {"overrides", "delete", "PROJECT ENV draft|live SECRET", 4, 4, OPTS(&o_expected),
         cmd_overrides_delete, "remove an override (the default applies again)", NULL, false},
        {"overrides", "list", "PROJECT ENV", 2, 2, OPTS(&o_version), cmd_overrides_list,
         "list an environment's overrides", NULL, false},
        {"apply", NULL, "PROJECT", 1, 1, OPTS(&o_file, &o_dry_run, &o_expected), cmd_apply,
         "apply a change set (JSON) to a project: all or nothing, one revision",
         "the file format is in docs/changes.md", false},
        {"merge", NULL, "PROJECT SOURCE", 2, 2,
         OPTS(&o_into, &o_dry_run, &o_delete_source, &o_expected_source, &o_expected_target),
         cmd_merge, "replace the target's overrides with the source's", NULL, false},
        {"resolve", NULL, "", 0, 0, OPTS(TARGET, &o_only, &o_at, &o_min), cmd_resolve,
         "list the effective secrets (never values)", TARGET_NOTE, false},
        {"run", NULL, "", 0, 0,
         OPTS(TARGET, &o_only, &o_allow, &o_watch, &o_on_change, &o_restart_timeout,
              &o_restart_jitter, FALLBACK),
         cmd_run,
         "run a program with the effective secrets in its environment: run ... -- CMD [ARGS]",
         TARGET_NOTE, true},
        {"export", NULL, "", 0, 0, OPTS(TARGET, &o_format, &o_allow, FALLBACK), cmd_export,
         "print the effective secrets as dotenv or JSON", TARGET_NOTE, false},
        {"render", NULL, "", 0, 0, OPTS(TARGET, FALLBACK), cmd_render,
         "fill {secret.NAME} in a template read from standard input", TARGET_NOTE, false},
        {"watch", NULL, "", 0, 0, OPTS(TARGET, &o_only, &o_from), cmd_watch,
         "print a line each time the effective secrets change (names, never values)", TARGET_NOTE,
         false},
        {"tokens", "create", "NAME", 1, 1, OPTS(&o_role, &o_project, &o_envs, &o_versions, &o_ttl),
         cmd_tokens_create, "create a token (its secret is printed once)", NULL, false},
        {"tokens", "list", "", 0, 0, OPTS(&o_project), cmd_tokens_list, "list tokens", NULL, false},
        {"tokens", "revoke", "ID", 1, 1, NO_OPTS, cmd_tokens_revoke, "revoke a token", NULL, false},
        {"audit", NULL, "", 0, 0, OPTS(&o_project, &o_since), cmd_audit, "list audit events", NULL,
         false},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	cli_usage(out, commands, N_COMMANDS, globals);
}

/* `coffer help [WORD [VERB]]`: the whole table, or the rows that match. */
static int help(int n, char **words)
{
	if (n == 0) {
		usage(stdout);
		return 0;
	}
	int shown = 0;
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct cli_command *k = &commands[i];
		if (strcmp(k->name, words[0]) != 0 ||
		    (n > 1 && (k->verb == NULL || strcmp(k->verb, words[1]) != 0)))
			continue;
		if (shown++)
			putchar('\n');
		cli_command_help(stdout, k);
	}
	if (shown == 0) {
		fprintf(stderr, "coffer: no command '%s%s%s' (see coffer --help)\n", words[0],
		        n > 1 ? " " : "", n > 1 ? words[1] : "");
		return 2;
	}
	return 0;
}

/* ---- parsing ---- */

static const struct cli_option *find_option(const struct cli_option *const *list, const char *name,
                                            size_t len)
{
	for (; *list; list++)
		if (strlen((*list)->name) == len && strncmp((*list)->name, name, len) == 0)
			return *list;
	return NULL;
}

/* The command named by words (one or two), or NULL; *used is how many words name it. */
static const struct cli_command *find_command(int n, char **words, int *used)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct cli_command *k = &commands[i];
		if (strcmp(k->name, words[0]) != 0)
			continue;
		if (k->verb == NULL) {
			*used = 1;
			return k;
		}
		if (n > 1 && strcmp(k->verb, words[1]) == 0) {
			*used = 2;
			return k;
		}
	}
	return NULL;
}

/* Says why words name no command: an unknown word, a missing or unknown verb. */
static int no_command(int n, char **words)
{
	bool grouped = false;
	char verbs[256] = "";
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, words[0]) == 0 && commands[i].verb) {
			grouped = true;
			size_t len = strlen(verbs);
			snprintf(verbs + len, sizeof(verbs) - len, "%s%s", len ? ", " : "",
			         commands[i].verb);
		}
	if (!grouped)
		return cli_usage_error(NULL, "unknown command '%s'", words[0]);
	if (n < 2)
		return cli_usage_error(NULL, "%s needs a verb: %s", words[0], verbs);
	return cli_usage_error(NULL, "%s has no verb '%s' (it has %s)", words[0], words[1], verbs);
}

/* Before coffer starts a program (which runs as the same user, and may start others): the client
 * holds its copy of the token, so the one in this process's environment or command line is
 * overwritten where it lies (what /proc/PID/environ and /proc/PID/cmdline show) and unset, and
 * the process is made not dumpable, so that its memory and those files are root's alone and
 * ptrace is refused. The program never gets the token in its own environment either
 * (cli_program_env). */
static void hide_token(const char *token)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		fprintf(stderr, "coffer: warning: cannot make this process undumpable\n");
	const char *env = getenv("COFFER_TOKEN");
	if (env && *env)
		explicit_bzero((char *)env, strlen(env));
	unsetenv("COFFER_TOKEN");
	if (token && *token && token != env)
		explicit_bzero((char *)token, strlen(token));
}

/* What the command line holds before the client is made. */
struct parsed {
	coffer_options opts; /* connection settings */
	char *pos[32];       /* positional words */
	int n_pos;           /* entries in pos */
	bool want_help;      /* --help */
};

/* Applies a global option: 0, or a usage error's status. */
static int set_global(struct cli *c, struct parsed *p, const struct cli_option *g,
                      const char *value)
{
	long long ms;
	if (g == &g_timeout && !coffer_parse_num(value, 1, 24LL * 3600 * 1000, &ms))
		return cli_usage_error(c, "--timeout-ms takes a number of milliseconds");
	if (g == &g_addr)
		p->opts.target = value;
	else if (g == &g_token)
		p->opts.token = value;
	else if (g == &g_ca)
		p->opts.ca_file = value;
	else if (g == &g_cert)
		p->opts.cert_file = value;
	else if (g == &g_key)
		p->opts.key_file = value;
	else if (g == &g_timeout)
		p->opts.timeout_ms = (int)ms;
	else if (g == &g_plaintext)
		p->opts.plaintext = 1;
	else if (g == &g_json)
		c->json = true;
	else if (g == &g_help)
		p->want_help = true;
	return 0;
}

/* Parses argv into c and p: 0, or a usage error's status (2). */
static int parse(int argc, char **argv, struct cli *c, struct parsed *p)
{
	int used = 0;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "-f") == 0) /* coffer apply P -f FILE */
			a = "--file";
		if (strcmp(a, "--") == 0) {
			if (c->cmd == NULL || !c->cmd->program)
				return cli_usage_error(c, "`--` is only for coffer run");
			c->command = argv + i + 1;
			c->n_command = argc - i - 1;
			break;
		}
		const char *eq_value;
		size_t len = coffer_opt_split(a, &eq_value);
		if (len == 0) {
			if (p->n_pos == (int)(sizeof(p->pos) / sizeof(p->pos[0])))
				return cli_usage_error(c, "too many arguments");
			p->pos[p->n_pos++] = a;
			if (c->cmd == NULL && strcmp(p->pos[0], "help") != 0)
				c->cmd = find_command(p->n_pos, p->pos, &used);
			continue;
		}
		const struct cli_option *o = find_option(globals, a, len);
		bool global = o != NULL;
		if (!global && c->cmd)
			o = find_option(c->cmd->opts, a, len);
		if (o == NULL && c->cmd)
			return cli_usage_error(c, "%s%s%s does not take %.*s", c->cmd->name,
			                       c->cmd->verb ? " " : "",
			                       c->cmd->verb ? c->cmd->verb : "", (int)len, a);
		if (o == NULL && p->n_pos > 0 && strcmp(p->pos[0], "help") != 0)
			return no_command(p->n_pos, p->pos);
		if (o == NULL)
			return cli_usage_error(
			        c, "unknown option %.*s (options follow the command)", (int)len, a);
		const char *value = "";
		if (o->arg && (value = coffer_opt_value(argc, argv, &i, eq_value)) == NULL)
			return cli_usage_error(c, "%s needs a value (%s)", o->name, o->arg);
		else if (!o->arg && eq_value)
			return cli_usage_error(c, "%s takes no value", o->name);
		if (global) {
			int rc = set_global(c, p, o, value);
			if (rc)
				return rc;
		} else if (c->n_opts < CLI_MAX_OPTS) {
			c->opts[c->n_opts++] = (struct cli_opt){o->name, value};
		} else {
			return cli_usage_error(c, "too many options");
		}
	}
	if (c->cmd) {
		c->argc = p->n_pos - used;
		c->argv = p->pos + used;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = {0};
	struct parsed p = {0};
	coffer_options_init(&p.opts);
	int rc = parse(argc, argv, &c, &p);
	if (rc)
		return rc;
	if (p.n_pos > 0 && strcmp(p.pos[0], "help") == 0)
		return help(p.n_pos - 1, p.pos + 1);
	if (p.want_help) {
		if (c.cmd)
			cli_command_help(stdout, c.cmd);
		else if (p.n_pos > 0)
			return help(p.n_pos, p.pos);
		else
			usage(stdout);
		return 0;
	}
	if (p.n_pos == 0) {
		usage(stderr);
		return 2;
	}
	if (c.cmd == NULL)
		return no_command(p.n_pos, p.pos);
	const struct cli_command *k = c.cmd;
	if (c.argc < k->min_args || c.argc > k->max_args)
		return cli_usage_error(&c, "%s%s%s takes %s%s", k->name, k->verb ? " " : "",
		                       k->verb ? k->verb : "", *k->args ? k->args : "no arguments",
		                       c.argc > k->max_args ? ", and nothing more" : "");
	if (k->program && c.n_command == 0)
		return cli_usage_error(&c, "run needs a program after --");
	coffer_error err;
	if (coffer_client_new(&p.opts, &c.client, &err) != 0)
		return cli_rpc_error(&err);
	if (k->program)
		hide_token(p.opts.token);
	c.ch = coffer_client_channel(c.client);
	rc = k->run(&c);
	coffer_client_free(c.client);
	return rc;
}
