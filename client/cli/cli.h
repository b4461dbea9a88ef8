/*
 * cli.h - what the coffer CLI's command files share: the command table's types, parsed
 * arguments, output helpers, values.
 */
#ifndef COFFER_CLI_H
#define COFFER_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "coffer/client.h"

#define CLI_MAX_OPTS 24

/* An option a command declares. */
struct cli_option {
	const char *name; /* "--value-file" */
	const char *arg;  /* what its value is ("FILE"), or NULL for a flag */
	const char *help; /* one line */
};

struct cli;

/* A row of the command table (main.c): dispatch, help and option checking. */
struct cli_command {
	const char *name;                     /* "secrets" */
	const char *verb;                     /* "create", or NULL for one-word commands */
	const char *args;                     /* its positional arguments, for usage */
	int min_args, max_args;               /* how many positionals it takes */
	const struct cli_option *const *opts; /* the options it takes, NULL-terminated */
	int (*run)(struct cli *c);            /* does it */
	const char *help;                     /* one line */
	const char *note;                     /* said with its usage errors, or NULL */
	bool program;                         /* takes a program after `--` (coffer run) */
};

struct cli_opt {
	const char *name;  /* "--value-file" */
	const char *value; /* its value; "" for a flag */
};

struct cli {
	const struct cli_command *cmd;     /* what runs */
	coffer_client *client;             /* open client */
	coffer_channel *ch;                /* its channel, for typed calls */
	bool json;                         /* --json */
	int argc;                          /* positionals after the command words */
	char **argv;                       /* those positionals */
	struct cli_opt opts[CLI_MAX_OPTS]; /* the command's options */
	int n_opts;                        /* entries in opts */
	char **command;                    /* after "--": the program for `coffer run` */
	int n_command;                     /* entries in command */
	const char *list_header;           /* cli_list_all: printed before the first row */
	bool list_started;                 /* the header (or `[`) is out */
};

/* The value of option `name` ("" for a flag that was given), or NULL. */
const char *cli_opt(const struct cli *c, const char *name);
/* A numeric option; *ok becomes false when it does not parse. */
int64_t cli_opt_i64(const struct cli *c, const char *name, int64_t def, bool *ok);
/* Reads --expected-revision (0 when absent) into *out; 0 or a usage error's status. */
int cli_expected_revision(const struct cli *c, int64_t *out);
/* The contract's enums as the CLI reads and prints them: "draft" <-> VERSION_DRAFT, ...; a word
 * it does not know reads as 0 (unspecified). */
int cli_version(const char *s);
const char *cli_version_name(int version);
int cli_role(const char *s);
const char *cli_role_name(int role);
const char *cli_visibility_name(int visibility);
const char *cli_source_name(int source);
/* "added", "changed", "removed" for a ChangeKind; "-" otherwise. */
const char *cli_kind_name(int kind);
/* usage.c: a command's usage line; its help (usage, the help line, its options); the whole
 * usage from the command table and the global options. */
void cli_command_line(FILE *out, const struct cli_command *k);
void cli_command_help(FILE *out, const struct cli_command *k);
void cli_usage(FILE *out, const struct cli_command *commands, size_t n,
               const struct cli_option *const *globals);
/* Prints "coffer: ..." (and the command's usage) and returns 2. */
int cli_usage_error(const struct cli *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Prints "coffer: CODE: message" and returns 1 (the server refused). */
int cli_rpc_error(const coffer_error *err);

void cli_json_str(const char *s);
void cli_time(const Google__Protobuf__Timestamp *ts, char *buf, size_t cap);

/* Fetches and prints one page after `token`; sets *next (malloc'd, "" on the last page). */
typedef int (*cli_page_fn)(struct cli *c, const char *token, char **next, int *printed,
                           coffer_error *err);
/* Prints every page: a header line for people, a JSON array with --json. Nothing is printed
 * before the first page has arrived. */
int cli_list_all(struct cli *c, const char *header, cli_page_fn page);
/* Before each row of a list: the header (or `[`) once, then the separator of JSON items. */
void cli_list_row(struct cli *c, int *printed);

/* Reads a value per --value-stdin / --value-file: 1 read (*out malloc'd), 0 neither given, 2 a
 * usage error (already printed). One trailing newline is dropped. */
int cli_read_value(const struct cli *c, char **out);
/* Wipes and frees a value. NULL-safe. */
void cli_free_value(char *v);
/* Prints "{}" for --json after a call that answers nothing; returns 0. */
int cli_done(const struct cli *c);

/* ---- runtimes (target.c, program_env.c, runtime.c, supervise.c) ---- */

/* What a runtime command resolves. */
struct cli_target {
	const char *project, *env; /* names */
	int version;               /* enum version */
	char project_buf[129], env_buf[129];
};
/* From --project/--env/--version, COFFER_PROJECT/COFFER_ENV/COFFER_VERSION, or the runtime
 * token's scope (WhoAmI); 0 or the status to exit with. */
int cli_target(struct cli *c, struct cli_target *t);
/* The fallback options (fb->path NULL: none); 0 or a usage error's status. */
int cli_fallback(struct cli *c, coffer_fallback *fb);
/* Resolves t (through the fallback when given, saying so on stderr); 0 or the exit status. */
int cli_resolve(struct cli *c, const struct cli_target *t, const coffer_fallback *fb,
                coffer_snapshot **snap);
/* The program's environment: ours without COFFER_TOKEN, and the secrets (or --only's); risky
 * names refused unless --allow-names. 0 and *env (free with cli_env_free), or the exit status. */
int cli_program_env(const struct cli *c, const coffer_snapshot *snap, char ***env);
void cli_env_free(char **env);
/* 1 (said on stderr) when name would set a variable that changes how programs run. */
int cli_refuse_risky(const struct cli *c, const char *name);
/* Splits "A,B,C" into a NULL-terminated malloc'd array (*n entries) of pointers into *copy, a
 * malloc'd copy of s (NULL: none); free both. */
char **cli_split_names(const char *s, size_t *n, char **copy);
/* "90s", "500ms", "10m", "2h", "30" (seconds) in milliseconds; false when it does not parse. */
bool cli_duration_ms(const char *s, int64_t *ms);
/* coffer run --watch: runs the program and restarts (or signals) it when its secrets change. */
int cli_supervise(struct cli *c);

/* The commands, one function per row of the table. */
int cmd_projects_create(struct cli *c);
int cmd_projects_get(struct cli *c);
int cmd_projects_list(struct cli *c);
int cmd_projects_delete(struct cli *c);
int cmd_secrets_create(struct cli *c);
int cmd_secrets_get(struct cli *c);
int cmd_secrets_list(struct cli *c);
int cmd_secrets_update(struct cli *c);
int cmd_secrets_delete(struct cli *c);
int cmd_secrets_reveal(struct cli *c);
int cmd_envs_create(struct cli *c);
int cmd_envs_get(struct cli *c);
int cmd_envs_list(struct cli *c);
int cmd_envs_delete(struct cli *c);
int cmd_overrides_set(struct cli *c);
int cmd_overrides_delete(struct cli *c);
int cmd_overrides_list(struct cli *c);
int cmd_apply(struct cli *c);
int cmd_secrets_import(struct cli *c);
int cmd_merge(struct cli *c);
int cmd_resolve(struct cli *c);
int cmd_run(struct cli *c);
int cmd_export(struct cli *c);
int cmd_render(struct cli *c);
int cmd_watch(struct cli *c);
int cmd_tokens_create(struct cli *c);
int cmd_tokens_list(struct cli *c);
int cmd_tokens_revoke(struct cli *c);
int cmd_audit(struct cli *c);

#endif
