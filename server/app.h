/*
 * app.h - state shared by every call (settings, keyring) and the state of one worker thread.
 */
#ifndef COFFER_APP_H
#define COFFER_APP_H

#include "config.h"
#include "crypt.h"
#include "rpc.h"
#include "store.h"

struct audit;

struct app {
	const struct config *cfg;      /* settings */
	struct crypt_keyring *keyring; /* data keys */
	struct audit *audit;           /* the audit writer */
	bool insecure_no_auth;         /* --insecure-no-auth: every call is allowed */
	struct metrics *metrics;       /* counters for /metrics */
};

struct worker_state {
	struct store *store; /* this worker's database connection */
	int index;           /* 0 .. workers-1 */
};

/* rpc_server_opts.worker_init / worker_fini: one store connection per worker. */
void *app_worker_init(void *app);
void app_worker_fini(void *state);
/* rpc_server_opts.on_call: one JSON log line per call. */
void app_on_call(const struct rpc_call_info *info, void *app);
/* The services cofferd serves, for rpc_server_start. */
extern const struct rpc_binding app_bindings[];
extern const size_t app_n_bindings;

#endif
