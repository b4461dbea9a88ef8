/*
 * main.c - cofferd: the subcommand table, and serving until SIGTERM.
 *
 * Every subcommand is a row of `commands`: its name, the options it declares, whether it takes
 * the settings (settings.c), what runs it and one help line. The table drives dispatch, `cofferd
 * --help`, `cofferd help COMMAND` and option checking: an option a command does not take is a
 * usage error (exit 2) before anything is done.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "commands.h"
#include "crypt.h"
#include "coffer_shared.h"
#include "domain.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "settings.h"
#include "tokens.h"

#define CONNECT_WAIT_SECONDS 30

/* An option of a command of its own (the settings are shared by all). */
struct opt {
	const char *flag; /* "--batch-size" */
	const char *arg;  /* "N" (a number from min to max), "FILE" (text) */
	int min, max;     /* range of a number */
	size_t offset;    /* into struct keys_args */
	const char *help; /* one line */
};

#define K(f) offsetof(struct keys_args, f)
static const struct opt o_batch = {
        "--batch-size", "N", 1, 10000, K(batch_size), "rows per transaction (default 200)"};
static const struct opt o_max_batches = {"--max-batches",
                                         "N",
                                         0,
                                         1 << 30,
                                         K(max_batches),
                                         "stop after N batches (default 0: until done)"};
static const struct opt o_delay = {"--batch-delay-ms",
                                   "N",
                                   0,
                                   60000,
                                   K(batch_delay_ms),
                                   "pause between batches, to spare a busy database"};
static const struct opt o_new_root = {"--new-root-key-file",
                                      "FILE",
                                      0,
                                      0,
                                      K(new_root_key_file),
                                      "the new root key (32 raw bytes or 64 hex digits)"};
#undef K

static const struct opt *const walk_opts[] = {&o_batch, &o_max_batches, &o_delay, NULL};
static const struct opt *const verify_opts[] = {&o_batch, NULL};
static const struct opt *const rekey_opts[] = {&o_new_root, NULL};
static const struct opt *const no_opts[] = {NULL};

struct command;

/* One run of a command: what the command line said. */
struct invocation {
	const struct command *cmd; /* the command */
	struct settings cfg;       /* the settings (commands that take them) */
	struct keys_args keys;     /* the keys commands' own options */
	char **words;              /* words after the command (help), NULL-terminated */
};
typedef int (*command_fn)(struct invocation *in);

struct command {
	const char *name;              /* "serve", "keys rewrap" */
	const struct opt *const *opts; /* its own options */
	bool settings;                 /* takes the settings (--database-url, ...) */
	command_fn run;                /* does it */
	const char *help;              /* one line */
};

static int run_serve(struct invocation *in);
static int run_migrate(struct invocation *in);
static int run_keys(struct invocation *in);
static int run_new_token(struct invocation *in);
static int run_help(struct invocation *in);
static int run_version(struct invocation *in);

static const struct command commands[] = {
        {"serve", no_opts, true, run_serve, "serve gRPC (the default command)"},
        {"migrate", no_opts, true, run_migrate, "apply pending database migrations and exit"},
        {"keys rotate", no_opts, true, run_keys,
         "add a keyring term and make it active (new writes use it)"},
        {"keys rewrap", walk_opts, true, run_keys,
         "re-seal older values under the active term (resumable; progress on stderr)"},
        {"keys rekey", rekey_opts, true, run_keys,
         "re-wrap the keyring under a new root key (values are not touched)"},
        {"keys verify", verify_opts, true, run_keys,
         "open every stored value and count those that do not (progress on stderr)"},
        {"keys status", no_opts, true, run_keys, "value rows per keyring term"},
        {"new-token", no_opts, false, run_new_token,
         "print a new token secret (for the bootstrap token's Kubernetes Secret)"},
        {"help", no_opts, false, run_help, "this text, or one command's: cofferd help COMMAND"},
        {"version", no_opts, false, run_version, "print the version"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void command_usage(FILE *out, const struct command *c)
{
	fprintf(out, "usage: cofferd %s", c->name);
	for (const struct opt *const *o = c->opts; *o; o++)
		fprintf(out, " [%s %s]", (*o)->flag, (*o)->arg);
	fprintf(out, "%s\n  %s\n", c->settings ? " [settings]" : "", c->help);
	for (const struct opt *const *o = c->opts; *o; o++)
		fprintf(out, "  %s %-8s %s\n", (*o)->flag, (*o)->arg, (*o)->help);
	if (c->settings)
		fprintf(out, "Settings: see cofferd --help.\n");
}

static void usage(FILE *out)
{
	fprintf(out, "usage: cofferd [COMMAND] [--option value ...]\n\nCommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\n`cofferd help COMMAND` shows a command's own options.\n\n");
	settings_usage(out);
}

__attribute__((format(printf, 2, 3))) static int usage_error(const struct command *c,
                                                             const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("cofferd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (c)
		command_usage(stderr, c);
	else
		fprintf(stderr, "see cofferd --help\n");
	return 2;
}

/* Takes the command's own options out of argv (setting *a); what is left goes to the settings.
 * Returns 0 or a usage error's status. */
static int own_options(const struct command *c, int *argc, char **argv, struct keys_args *a)
{
	int kept = 0;
	for (int i = 0; i < *argc; i++) {
		const struct opt *found = NULL;
		const char *arg = argv[i], *eq_value;
		size_t len = coffer_opt_split(arg, &eq_value);
		for (const struct opt *const *o = c->opts; *o && !found && len; o++)
			if (strlen((*o)->flag) == len && strncmp((*o)->flag, arg, len) == 0)
				found = *o;
		if (found == NULL) {
			argv[kept++] = argv[i];
			continue;
		}
		const char *value = coffer_opt_value(*argc, argv, &i, eq_value);
		if (value == NULL)
			return usage_error(c, "%s needs a value", found->flag);
		void *field = (char *)a + found->offset;
		if (strcmp(found->arg, "N") == 0) {
			long long v;
			if (!coffer_parse_num(value, found->min, found->max, &v)) {
				fprintf(stderr,
				        "cofferd: %s must be a whole number from %d to %d\n",
				        found->flag, found->min, found->max);
				return 2;
			}
			*(int *)field = (int)v;
		} else {
			*(const char **)field = value;
		}
	}
	*argc = kept;
	return 0;
}

int main(int argc, char **argv)
{
	/* The command: the first words that name one ("keys rewrap"); none or an option: serve. */
	struct invocation in = {.cmd = find("serve"), .keys = {.batch_size = 200}};
	int first = 1;
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		in.cmd = find("help");
		first = 2;
	} else if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		in.cmd = find("version");
		first = 2;
	} else if (argc > 1 && argv[1][0] != '-') {
		char name[64];
		snprintf(name, sizeof(name), "%s %s", argv[1], argc > 2 ? argv[2] : "");
		if ((in.cmd = find(name)) != NULL)
			first = 3;
		else if ((in.cmd = find(argv[1])) != NULL && strcmp(argv[1], "keys") != 0)
			first = 2;
		else if (strcmp(argv[1], "keys") == 0)
			return usage_error(NULL,
			                   "keys needs rotate, rewrap, rekey, verify or status");
		else
			return usage_error(NULL, "unknown command '%s'", argv[1]);
	}
	in.words = argv + first;
	if (in.cmd->run == run_help) /* help takes command words, not options */
		return run_help(&in);
	int n = argc - first;
	int rc = own_options(in.cmd, &n, in.words, &in.keys);
	if (rc)
		return rc;
	if (!in.cmd->settings && n > 0)
		return usage_error(in.cmd, "unexpected argument '%s'", in.words[0]);
	if (settings_from_env(&in.cfg) < 0 || settings_from_args(&in.cfg, n, in.words, 0) < 0) {
		settings_free(&in.cfg);
		return 2;
	}
	/* A connection string that does not parse is a mistake in the configuration: said at once
	 * (exit 2), never retried. What libpq says is shown, never the string (it may hold a
	 * password). */
	const char *urls[] = {in.cfg.database_url, in.cfg.notify_database_url};
	const char *url_flags[] = {"--database-url", "--notify-database-url"};
	for (int i = 0; in.cmd->settings && i < 2; i++) {
		char why[256];
		if (urls[i] && *urls[i] && !domain_url_valid(urls[i], why, sizeof(why))) {
			fprintf(stderr, "cofferd: %s is not a valid connection string: %s\n",
			        url_flags[i], why);
			settings_free(&in.cfg);
			return 2;
		}
	}
	enum log_level level;
	if (!log_parse_level(in.cfg.log_level, &level)) {
		fprintf(stderr, "cofferd: --log-level must be debug, info, warn or error\n");
		settings_free(&in.cfg);
		return 2;
	}
	log_set_level(level);
	/* Plaintext passes through this process's memory: no core dumps, no same-uid ptrace. */
	struct rlimit no_core = {0, 0};
	if (setrlimit(RLIMIT_CORE, &no_core) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_warn("cannot disable core dumps");
	/* serve takes SIGTERM and SIGINT with sigwait, never in another thread: they are blocked
	 * before gRPC starts its threads, which inherit the mask. */
	if (in.cmd->run == run_serve) {
		sigset_t stop;
		sigemptyset(&stop);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGINT);
		pthread_sigmask(SIG_BLOCK, &stop, NULL);
		signal(SIGPIPE, SIG_IGN);
	}
	int status = 1;
	if (server_global_init() != 0)
		log_error("cannot initialise libsodium");
	else
		status = in.cmd->run(&in);
	server_global_shutdown();
	settings_free(&in.cfg);
	return status;
}

static int run_help(struct invocation *in)
{
	char *const *words = in->words;
	if (words[0] == NULL) {
		usage(stdout);
		return 0;
	}
	char name[64];
	snprintf(name, sizeof(name), "%s%s%s", words[0], words[1] ? " " : "",
	         words[1] ? words[1] : "");
	const struct command *c = find(name);
	if (c == NULL && (c = find(words[0])) == NULL) {
		int shown = 0;
		for (size_t i = 0; i < N_COMMANDS; i++)
			if (strncmp(commands[i].name, name, strlen(name)) == 0 &&
			    commands[i].name[strlen(name)] == ' ')
				command_usage(stdout, &commands[i]), shown++;
		return shown ? 0 : usage_error(NULL, "unknown command '%s'", name);
	}
	command_usage(stdout, c);
	return 0;
}

static int run_version(struct invocation *in)
{
	(void)in;
	printf("cofferd %s\n", COFFER_VERSION);
	return 0;
}

static int run_new_token(struct invocation *in)
{
	(void)in;
	char token[TOKEN_SECRET_MAX];
	tokens_new_secret(token);
	puts(token);
	crypt_wipe(token, sizeof(token));
	return 0;
}

static int run_migrate(struct invocation *in)
{
	struct cof_err e = {0};
	if (server_migrate(&in->cfg, CONNECT_WAIT_SECONDS, &e) != 0) {
		log_error("migrate failed: %s%s%s", e.msg, e.detail[0] ? ": " : "", e.detail);
		return 1;
	}
	return 0;
}

static int run_keys(struct invocation *in)
{
	static const struct {
		const char *name;
		int (*fn)(const struct settings *, const struct keys_args *);
	} verbs[] = {
	        {"keys rotate", cmd_keys_rotate}, {"keys rewrap", cmd_keys_rewrap},
	        {"keys rekey", cmd_keys_rekey},   {"keys verify", cmd_keys_verify},
	        {"keys status", cmd_keys_status},
	};
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verbs[i].name, in->cmd->name) == 0)
			return verbs[i].fn(&in->cfg, &in->keys);
	return 2;
}

/* SIGTERM and SIGINT, taken by a thread of their own: during start-up (which may wait for the
 * database) one ends the process at once, since nothing is served yet; once serving, it starts
 * the graceful stop. */
struct signals {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool serving; /* start-up is over */
	int sig;      /* the signal taken, 0: none yet */
};

static void *take_signals(void *arg)
{
	struct signals *g = arg;
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	int sig = 0;
	sigwait(&stop, &sig);
	pthread_mutex_lock(&g->mu);
	g->sig = sig;
	if (!g->serving) {
		log_info("received %s during start-up: exiting",
		         sig == SIGTERM ? "SIGTERM" : "SIGINT");
		_exit(0);
	}
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

static int run_serve(struct invocation *in)
{
	const struct settings *cfg = &in->cfg;
	static struct signals g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
	pthread_t taker;
	if (pthread_create(&taker, NULL, take_signals, &g) != 0) {
		log_error("cannot start the signal thread");
		return 1;
	}
	pthread_detach(taker);
	struct cof_err e = {0};
	struct server *srv = NULL;
	if (server_start(cfg, CONNECT_WAIT_SECONDS, &srv, &e) != 0) {
		log_error("cannot start: %s%s%s%s", e.msg, e.detail[0] ? " (" : "", e.detail,
		          e.detail[0] ? ")" : "");
		return 1;
	}
	log_info("cofferd %s serving gRPC on %s (port %d) with %d workers", COFFER_VERSION,
	         cfg->listen, server_port(srv), server_workers(srv));
	pthread_mutex_lock(&g.mu);
	g.serving = true;
	while (g.sig == 0)
		pthread_cond_wait(&g.cv, &g.mu);
	int sig = g.sig;
	pthread_mutex_unlock(&g.mu);
	log_info("received %s: stopping (grace %d s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
	         cfg->grace_seconds);
	server_stop(srv, cfg->grace_seconds);
	log_info("stopped");
	return 0;
}
