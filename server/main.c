/*
 * main.c - cofferd: `cofferd [serve] [--flags]` serves; `cofferd migrate` applies migrations.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "crypt.h"
#include "log.h"
#include "server.h"

#define CONNECT_WAIT_SECONDS 30

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: cofferd [serve] [--flag value ...]   serve gRPC\n"
	        "       cofferd migrate [--flag value ...]   apply database migrations and exit\n"
	        "       cofferd keys rotate|rewrap|rekey|verify|status [--flag value ...]\n"
	        "            rotate: add a keyring term and make it active\n"
	        "            rewrap [--batch-size N] [--max-batches N] [--batch-delay-ms N]:\n"
	        "                    re-seal older values under the active term (resumable)\n"
	        "            rekey --new-root-key-file F: re-wrap the keyring under a new root key\n"
	        "            verify: open every stored value; status: value rows per term\n"
	        "       cofferd new-token                      print a new token secret (bootstrap)\n"
	        "       cofferd --help | --version\n\n");
	config_usage(out);
}

int main(int argc, char **argv)
{
	int first = 1;
	const char *command = "serve";
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "new-token") == 0) {
		/* A fresh token secret, e.g. for the bootstrap token's Kubernetes Secret. */
		if (crypt_init() != 0)
			return 1;
		char token[CRYPT_TOKEN_CHARS + 1];
		crypt_token_new(token);
		puts(token);
		crypt_wipe(token, sizeof(token));
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("cofferd %s\n", COFFER_VERSION);
		return 0;
	}
	if (argc > 1 && argv[1][0] != '-') {
		command = argv[1];
		first = 2;
	}
	/* cofferd keys SUB: the subcommand's own options are set aside from the settings. */
	const char *keys_sub = NULL;
	char *keys_args[16];
	int n_keys_args = 0;
	char **args = argv;
	int n_args = argc;
	char *kept[64];
	if (strcmp(command, "keys") == 0) {
		if (argc < 3 || argc > 64) {
			usage(stderr);
			return 2;
		}
		keys_sub = argv[2];
		static const char *const own[] = {"--batch-size", "--max-batches",
		                                  "--batch-delay-ms", "--new-root-key-file", NULL};
		n_args = 0;
		kept[n_args++] = argv[0];
		for (int i = 3; i < argc; i++) {
			bool mine = false;
			for (int k = 0; own[k]; k++)
				mine = mine || strcmp(argv[i], own[k]) == 0;
			if (mine && i + 1 < argc && n_keys_args + 2 <= 16) {
				keys_args[n_keys_args++] = argv[i];
				keys_args[n_keys_args++] = argv[++i];
			} else {
				kept[n_args++] = argv[i];
			}
		}
		args = kept;
		first = 1;
	} else if (strcmp(command, "serve") != 0 && strcmp(command, "migrate") != 0) {
		fprintf(stderr, "cofferd: unknown command '%s'\n", command);
		usage(stderr);
		return 2;
	}
	struct config cfg;
	if (config_from_env(&cfg) < 0 || config_from_args(&cfg, n_args, args, first) < 0) {
		config_free(&cfg);
		return 2;
	}
	enum log_level level;
	if (!log_parse_level(cfg.log_level, &level)) {
		fprintf(stderr, "cofferd: --log-level must be debug, info, warn or error\n");
		config_free(&cfg);
		return 2;
	}
	log_set_level(level);
	/* Signals are taken by sigwait below, never by another thread: block them before gRPC
	 * starts its threads, which inherit the mask. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Plaintext passes through this process's memory: no core dumps, no same-uid ptrace. */
	struct rlimit no_core = {0, 0};
	if (setrlimit(RLIMIT_CORE, &no_core) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_warn("cannot disable core dumps");
	if (server_global_init() != 0) {
		log_error("cannot initialise libsodium");
		config_free(&cfg);
		return 1;
	}
	struct cof_err e = {0};
	int status = 0;
	if (keys_sub) {
		status = server_keys(&cfg, keys_sub, n_keys_args, keys_args);
		goto out;
	}
	if (strcmp(command, "migrate") == 0) {
		if (server_migrate(&cfg, CONNECT_WAIT_SECONDS, &e) != 0) {
			log_error("migrate failed: %s%s%s", e.msg, e.detail[0] ? ": " : "",
			          e.detail);
			status = 1;
		}
		goto out;
	}

	struct server *srv = NULL;
	if (server_start(&cfg, CONNECT_WAIT_SECONDS, &srv, &e) != 0) {
		log_error("cannot start: %s%s%s%s", e.msg, e.detail[0] ? " (" : "", e.detail,
		          e.detail[0] ? ")" : "");
		status = 1;
		goto out;
	}
	log_info("cofferd %s serving gRPC on %s (port %d) with %d workers", COFFER_VERSION,
	         cfg.listen, server_port(srv), cfg.workers);
	int sig = 0;
	sigwait(&stop, &sig);
	log_info("received %s: stopping (grace %d s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
	         cfg.grace_seconds);
	server_stop(srv, cfg.grace_seconds);
	log_info("stopped");
out:
	server_global_shutdown();
	config_free(&cfg);
	return status;
}
