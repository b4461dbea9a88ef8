/*
 * server.h - cofferd's life: start-up checks, wiring the rooms together, serving, graceful stop.
 *
 * Used by main.c and by the integration tests, which run real servers in their own process.
 */
#ifndef COFFER_SERVER_H
#define COFFER_SERVER_H

#include "errors.h"
#include "settings.h"

struct server;

/* Global set-up (libsodium, gRPC core); once per process. 0 or a COF_E* code. */
int server_global_init(void) __attribute__((warn_unused_result));
void server_global_shutdown(void);
/* Connects (retrying for up to connect_wait_s seconds), migrates when cfg->migrate, checks the
 * schema, loads or creates the keyring (a wrong root key fails here), makes the first admin token
 * when there is none, and starts serving. cfg is copied; the strings it points to must stay valid
 * while the server runs. */
int server_start(const struct settings *cfg, int connect_wait_s, struct server **out,
                 struct cof_err *e) __attribute__((warn_unused_result));
/* The bound port of the /metrics listener (0: none). */
int server_metrics_port(const struct server *srv);
/* The bound port of the HTTP/JSON endpoint (0: none). */
int server_http_port(const struct server *srv);
/* The bound gRPC port. */
int server_port(const struct server *srv);
/* The gRPC worker threads it runs (the setting, or one per CPU). */
int server_workers(const struct server *srv);
/* Graceful stop (see rpc_server_shutdown), then frees. NULL-safe. */
void server_stop(struct server *srv, int grace_seconds);
/* cofferd migrate: applies pending migrations and returns. */
int server_migrate(const struct settings *cfg, int connect_wait_s, struct cof_err *e)
        __attribute__((warn_unused_result));

#endif
