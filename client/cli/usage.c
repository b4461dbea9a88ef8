/*
 * usage.c - what the CLI says about its commands: a command's usage line and help, the whole
 * usage, and usage errors (exit 2). The command table itself is main.c's.
 */
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"

void cli_command_line(FILE *out, const struct cli_command *k)
{
	char words[64];
	snprintf(words, sizeof(words), "%s%s%s", k->name, k->verb ? " " : "",
	         k->verb ? k->verb : "");
	fprintf(out, "  %s%s%s", words, *k->args ? " " : "", k->args);
	for (const struct cli_option *const *o = k->opts; *o; o++)
		fprintf(out, " [%s%s%s]", (*o)->name, (*o)->arg ? " " : "",
		        (*o)->arg ? (*o)->arg : "");
	fprintf(out, "%s\n", k->program ? " -- CMD [ARGS...]" : "");
}

void cli_command_help(FILE *out, const struct cli_command *k)
{
	fprintf(out, "usage:\n");
	cli_command_line(out, k);
	fprintf(out, "\n%s.\n", k->help);
	if (k->note)
		fprintf(out, "Note: %s.\n", k->note);
	if (*k->opts)
		fprintf(out, "\nOptions:\n");
	for (const struct cli_option *const *o = k->opts; *o; o++)
		fprintf(out, "  %-28s %s\n", (*o)->name, (*o)->help);
}

void cli_usage(FILE *out, const struct cli_command *commands, size_t n,
               const struct cli_option *const *globals)
{
	fprintf(out, "usage: coffer [global options] COMMAND [ARGS] [options]\n\nCommands:\n");
	for (size_t i = 0; i < n; i++)
		cli_command_line(out, &commands[i]);
	fprintf(out, "  help [COMMAND [VERB]]\n\nGlobal options:\n");
	for (const struct cli_option *const *o = globals; *o; o++)
		fprintf(out, "  %-12s %-10s %s\n", (*o)->name, (*o)->arg ? (*o)->arg : "",
		        (*o)->help);
	fprintf(out,
	        "\nEnvironment: COFFER_ADDR (default 127.0.0.1:50051), COFFER_TOKEN, "
	        "COFFER_CA_FILE,\nCOFFER_CERT_FILE, COFFER_KEY_FILE, COFFER_PLAINTEXT. A server "
	        "off this host is reached\nover TLS (the system's CA roots, or --ca-file) unless "
	        "--plaintext says otherwise.\n");
}

int cli_usage_error(const struct cli *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("coffer: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (c && c->cmd && c->cmd->note)
		fprintf(stderr, "; %s", c->cmd->note);
	fputc('\n', stderr);
	if (c && c->cmd) {
		fputs("usage:\n", stderr);
		cli_command_line(stderr, c->cmd);
	} else {
		fputs("see coffer --help\n", stderr);
	}
	return 2;
}
