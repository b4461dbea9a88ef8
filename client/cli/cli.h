/*
 * cli.h - what the coffer CLI's command files share: parsed arguments, output helpers, values.
 */
#ifndef COFFER_CLI_H
#define COFFER_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "coffer/client.h"

#define CLI_MAX_OPTS 24

struct cli_opt {
	const char *name;  /* "--value-file" */
	const char *value; /* its value; "" for a flag */
};

struct cli {
	coffer_client *client;             /* open client */
	coffer_channel *ch;                /* its channel, for typed calls */
	bool json;                         /* --json */
	int argc;                          /* positionals after the command words */
	char **argv;                       /* those positionals */
	struct cli_opt opts[CLI_MAX_OPTS]; /* the command's options */
	int n_opts;                        /* entries in opts */
	char **command;                    /* after "--": the program for `coffer run` */
	int n_command;                     /* entries in command */
};

/* The value of option `name` ("" for a flag that was given), or NULL. */
const char *cli_opt(const struct cli *c, const char *name);
/* A numeric option; *ok becomes false when it does not parse. */
int64_t cli_opt_i64(const struct cli *c, const char *name, int64_t def, bool *ok);
/* "draft" -> 1, "live" -> 2, anything else -> 0. */
int cli_version(const char *s);
const char *cli_version_name(int version);
/* Prints "coffer: ..." and returns 2 (usage) or 1 (the server refused). */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_rpc_error(const coffer_error *err);

void cli_json_str(const char *s);
void cli_time(const Google__Protobuf__Timestamp *ts, char *buf, size_t cap);
/* The separator before the next item of a JSON array. */
void cli_json_sep(const struct cli *c, int *printed);

/* Fetches and prints one page after `token`; sets *next (malloc'd, "" on the last page). */
typedef int (*cli_page_fn)(struct cli *c, const char *token, char **next, int *printed,
                           coffer_error *err);
/* Prints every page: a header line for people, a JSON array with --json. */
int cli_list_all(struct cli *c, const char *header, cli_page_fn page);

/* Reads a value per --value-stdin / --value-file: 1 read (*out malloc'd), 0 neither given, 2 a
 * usage error (already printed). One trailing newline is dropped. */
int cli_read_value(const struct cli *c, char **out);
/* Wipes and frees a value. NULL-safe. */
void cli_free_value(char *v);

int cmd_projects(struct cli *c, const char *verb);
int cmd_secrets(struct cli *c, const char *verb);
int cmd_envs(struct cli *c, const char *verb);
int cmd_overrides(struct cli *c, const char *verb);
int cmd_merge(struct cli *c);
int cmd_resolve(struct cli *c);
int cmd_run(struct cli *c);
int cmd_export(struct cli *c);
int cmd_render(struct cli *c);
int cmd_tokens(struct cli *c, const char *verb);
int cmd_audit(struct cli *c);

#endif
