/* server.c - start-up, keyring bootstrap, the service list and the call log (see server.h). */
#include "server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "coffer_registry.h"
#include "handlers.h"
#include "log.h"

struct server {
	struct app app;         /* shared state handed to handlers */
	struct rpc_server *rpc; /* the gRPC runtime */
};

const struct rpc_binding app_bindings[] = {
        {&coffer__v1__projects__service, &projects_handlers},
        {&coffer__v1__secrets__service, &secrets_handlers},
        {&coffer__v1__environments__service, &environments_handlers},
        {&coffer__v1__access__service, &access_handlers},
        {&grpc__health__v1__health__service, &health_handlers},
        {&grpc__reflection__v1alpha__server_reflection__service, &reflection_handlers},
};
const size_t app_n_bindings = sizeof(app_bindings) / sizeof(app_bindings[0]);

void app_on_call(const struct rpc_call_info *info, void *app)
{
	enum log_level level = info->code == RPC_INTERNAL ? LOG_ERROR : LOG_INFO;
	if (!log_enabled(level))
		return;
	char members[1024];
	char method[256] = "", peer[128] = "", project[160] = "";
	log_json_escape(method, sizeof(method), info->method);
	log_json_escape(peer, sizeof(peer), info->peer);
	log_json_escape(project, sizeof(project), info->project ? info->project : "");
	snprintf(members, sizeof(members),
	         "\"request_id\":%" PRIu64
	         ",\"method\":\"%s\",\"code\":\"%s\",\"duration_ms\":%.3f,"
	         "\"project\":\"%s\",\"peer\":\"%s\"",
	         info->request_id, method, rpc_code_name(info->code), info->duration_ms, project,
	         peer);
	log_fields(level, "call", members);
}

int server_global_init(void)
{
	if (crypt_init() != 0)
		return COF_EINTERNAL;
	grpc_init();
	return 0;
}

void server_global_shutdown(void)
{
	grpc_shutdown();
}

static int connect_with_wait(const struct config *cfg, int wait_s, struct store **out,
                             struct cof_err *e)
{
	for (int i = 0;; i++) {
		int rc = store_open(cfg->database_url, out, e);
		if (rc == 0 || rc != COF_EUNAVAIL || i >= wait_s)
			return rc;
		if (i == 0)
			log_warn("database not reachable yet (%s); retrying for up to %d s",
			         e->detail, wait_s);
		store_close(*out);
		*out = NULL;
		sleep(1);
	}
}

static int add_term(void *arg, int32_t term, const uint8_t *wrapped, size_t len, bool active,
                    struct cof_err *e)
{
	return crypt_keyring_add(arg, term, wrapped, len, active, e);
}

/* Loads every keyring term; creates term 1 on a fresh database. */
static int load_keyring(struct store *s, struct crypt_keyring *kr, struct cof_err *e)
{
	int rc = store_keyring_load(s, add_term, kr, e);
	if (rc || crypt_keyring_active_term(kr) != 0)
		return rc;
	uint8_t wrapped[CRYPT_WRAPPED_KEY_BYTES];
	if ((rc = crypt_keyring_wrap_new(kr, 1, wrapped, e)) ||
	    (rc = store_keyring_insert(s, 1, wrapped, sizeof(wrapped), true, e)))
		return rc;
	/* Another replica may have inserted term 1 first: load what won. */
	if ((rc = store_keyring_load(s, add_term, kr, e)))
		return rc;
	if (crypt_keyring_active_term(kr) == 0)
		return cof_err_set(e, COF_EINTERNAL, "the keyring has no active term");
	log_info("created keyring term 1");
	return 0;
}

int server_migrate(const struct config *cfg, int connect_wait_s, struct cof_err *e)
{
	struct store *s = NULL;
	int rc = connect_with_wait(cfg, connect_wait_s, &s, e);
	int applied = 0;
	if (rc == 0 && (rc = store_migrate(s, &applied, e)) == 0)
		log_info("database schema is up to date (%d migration%s applied)", applied,
		         applied == 1 ? "" : "s");
	store_close(s);
	return rc;
}

int server_start(const struct config *cfg, int connect_wait_s, struct server **out,
                 struct cof_err *e)
{
	*out = NULL;
	struct server *srv = calloc(1, sizeof(*srv));
	struct store *s = NULL;
	int rc;
	if (srv == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	srv->app.cfg = cfg;
	if ((rc = crypt_keyring_new(cfg->root_key_file, &srv->app.keyring, e)))
		goto out_free;
	if ((rc = connect_with_wait(cfg, connect_wait_s, &s, e)))
		goto out_free;
	int applied = 0, known = 0;
	if (cfg->migrate && (rc = store_migrate(s, &applied, e)))
		goto out_free;
	if ((rc = store_schema_version(s, &applied, &known, e)))
		goto out_free;
	if (applied < known) {
		rc = cof_err_set(
		        e, COF_EPRECOND,
		        "the database schema is at version %d and this cofferd needs %d: run "
		        "'cofferd migrate' or start with --migrate",
		        applied, known);
		goto out_free;
	}
	if ((rc = load_keyring(s, srv->app.keyring, e)))
		goto out_free;
	store_close(s);
	s = NULL;
	struct rpc_server_opts opts = {
	        .listen = cfg->listen,
	        .workers = cfg->workers,
	        .slots_per_method = cfg->slots_per_method,
	        .max_message_bytes = cfg->max_message_bytes,
	        .app = &srv->app,
	        .worker_init = app_worker_init,
	        .worker_fini = app_worker_fini,
	        .on_call = app_on_call,
	};
	if ((rc = rpc_server_start(&opts, app_bindings, app_n_bindings, &srv->rpc, e)))
		goto out_free;
	*out = srv;
	return 0;
out_free:
	store_close(s);
	crypt_keyring_free(srv->app.keyring);
	free(srv);
	return rc;
}

int server_port(const struct server *srv)
{
	return rpc_server_port(srv->rpc);
}

void server_stop(struct server *srv, int grace_seconds)
{
	if (srv == NULL)
		return;
	rpc_server_shutdown(srv->rpc, grace_seconds);
	rpc_server_free(srv->rpc);
	crypt_keyring_free(srv->app.keyring);
	free(srv);
}
