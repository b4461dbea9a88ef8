/*
 * server.h - cofferd's life: start-up checks, the keyring, serving, and graceful stop.
 *
 * Used by main.c and by the integration tests, which run a real server in their own process.
 */
#ifndef COFFER_SERVER_H
#define COFFER_SERVER_H

#include "app.h"
#include "config.h"
#include "errors.h"

struct server;

/* Global set-up (libsodium, gRPC core); once per process. 0 or a COF_E* code. */
int server_global_init(void) __attribute__((warn_unused_result));
void server_global_shutdown(void);
/* Connects (retrying for up to connect_wait_s seconds), migrates when cfg->migrate, checks the
 * schema, loads or creates the keyring (a wrong root key fails here), and starts serving. cfg is
 * copied; the strings it points to must stay valid while the server runs. */
int server_start(const struct config *cfg, int connect_wait_s, struct server **out,
                 struct cof_err *e) __attribute__((warn_unused_result));
/* The bound port of the /metrics listener (0: none). */
int server_metrics_port(const struct server *srv);
/* The bound gRPC port. */
int server_port(const struct server *srv);
/* Graceful stop (see rpc_server_shutdown), then frees. NULL-safe. */
void server_stop(struct server *srv, int grace_seconds);
/* cofferd migrate: applies pending migrations and returns. */
int server_migrate(const struct config *cfg, int connect_wait_s, struct cof_err *e)
        __attribute__((warn_unused_result));

/* cofferd keys rotate|rewrap|rekey|verify|status. `args` are the subcommand's own options
 * (--batch-size N, --max-batches N, --batch-delay-ms N, --new-root-key-file F). Prints what it did;
 * returns a process exit status. */
int server_keys(const struct config *cfg, const char *sub, int argc, char **argv);

#endif
