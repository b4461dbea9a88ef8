/*
 * server.c - starting and stopping the gRPC server (see rpc.h): channel arguments, the methods
 * registered with their request slots, the listener and its credentials, the worker threads and
 * the reaper; and the graceful stop.
 */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

void rpc_global_init(void)
{
	grpc_init();
}

void rpc_global_shutdown(void)
{
	grpc_shutdown();
}

int rpc_server_port(const struct rpc_server *srv)
{
	return srv->port;
}

int rpc_server_calls(struct rpc_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	int n = srv->n_calls;
	pthread_mutex_unlock(&srv->mu);
	return n;
}

/* The core server with its channel arguments, and the queue. */
static void create_core(struct rpc_server *srv, const struct rpc_server_opts *opts)
{
	const struct {
		const char *key;
		int value;
	} named[] = {
	        {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, opts->max_message_bytes},
	        {GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1},
	        /* Two servers on one port would share its traffic: a busy port must fail loudly. */
	        {GRPC_ARG_ALLOW_REUSEPORT, 0},
	        /* Connections: a bound on streams each, pings to find dead peers, idle ones closed.
	         */
	        {GRPC_ARG_MAX_CONCURRENT_STREAMS,
	         opts->max_streams_per_connection > 0 ? opts->max_streams_per_connection : INT_MAX},
	        {GRPC_ARG_KEEPALIVE_TIME_MS, 60000},
	        {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000},
	        {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1},
	        {GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000},
	        {GRPC_ARG_MAX_CONNECTION_IDLE_MS, 300000},
	};
	enum { N_ARGS = sizeof(named) / sizeof(named[0]) };
	grpc_arg args[N_ARGS];
	memset(args, 0, sizeof(args));
	for (size_t i = 0; i < N_ARGS; i++) {
		args[i].type = GRPC_ARG_INTEGER;
		args[i].key = (char *)named[i].key;
		args[i].value.integer = named[i].value;
	}
	grpc_channel_args channel_args = {N_ARGS, args};
	srv->server = grpc_server_create(&channel_args, NULL);
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
}

/* Registers every method of the bindings with per slots each, and per catch-all slots (NULL
 * method) for methods nobody registered. */
static int register_methods(struct rpc_server *srv, const struct rpc_binding *bindings,
                            size_t n_bindings, size_t per, struct cof_err *e)
{
	size_t n_methods = 0;
	for (size_t b = 0; b < n_bindings; b++)
		n_methods += bindings[b].service->n_methods;
	srv->n_slots = n_methods * per + per;
	srv->slots = calloc(srv->n_slots, sizeof(*srv->slots));
	if (srv->slots == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	size_t k = 0;
	for (size_t b = 0; b < n_bindings; b++) {
		const coffer_service_desc *svc = bindings[b].service;
		for (size_t m = 0; m < svc->n_methods; m++) {
			const coffer_method_desc *md = &svc->methods[m];
			/* Unary: the request comes with the call; streams read theirs. */
			void *reg = grpc_server_register_method(
			        srv->server, md->path, NULL,
			        md->client_streaming ? GRPC_SRM_PAYLOAD_NONE
			                             : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
			        0);
			if (reg == NULL)
				return cof_err_set(e, COF_EINTERNAL, "cannot register method %s",
				                   md->path);
			for (size_t i = 0; i < per; i++, k++) {
				srv->slots[k].method = md;
				srv->slots[k].handlers = bindings[b].handlers;
				srv->slots[k].registered = reg;
			}
		}
	}
	for (size_t i = 0; i < srv->n_slots; i++) {
		srv->slots[i].srv = srv;
		srv->slots[i].tag.kind = TAG_SLOT;
	}
	return 0;
}

/* Binds opts->listen, over TLS when a certificate is given (and mTLS with a client CA). */
static int listen_on(struct rpc_server *srv, const struct rpc_server_opts *opts, struct cof_err *e)
{
	grpc_server_credentials *creds;
	if (opts->tls_cert_pem) {
		grpc_ssl_pem_key_cert_pair pair = {opts->tls_key_pem, opts->tls_cert_pem};
		creds = grpc_ssl_server_credentials_create_ex(
		        opts->tls_client_ca_pem, &pair, 1,
		        opts->tls_client_ca_pem
		                ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
		                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
		        NULL);
	} else {
		creds = grpc_insecure_server_credentials_create();
	}
	srv->port = grpc_server_add_http2_port(srv->server, opts->listen, creds);
	grpc_server_credentials_release(creds);
	if (srv->port <= 0)
		return cof_err_set(e, COF_EUNAVAIL, "cannot listen on %s", opts->listen);
	return 0;
}

/* Posts every slot and starts the workers and the reaper. */
static int start_threads(struct rpc_server *srv, int workers, struct cof_err *e)
{
	grpc_server_start(srv->server);
	for (size_t i = 0; i < srv->n_slots; i++)
		rpc__slot_post(&srv->slots[i]);
	srv->workers = calloc((size_t)workers, sizeof(pthread_t));
	if (srv->workers == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	for (int i = 0; i < workers; i++) {
		if (pthread_create(&srv->workers[i], NULL, rpc__worker_main, srv) != 0)
			return cof_err_set(e, COF_EINTERNAL, "cannot start worker threads");
		pthread_setname_np(srv->workers[i], "coffer-grpc");
		srv->n_started++;
	}
	if (pthread_create(&srv->reaper, NULL, rpc__reaper_main, srv) != 0)
		return cof_err_set(e, COF_EINTERNAL, "cannot start the reaper thread");
	srv->reaper_started = true;
	return 0;
}

int rpc_server_start(const struct rpc_server_opts *opts, const struct rpc_binding *bindings,
                     size_t n_bindings, struct rpc_server **out, struct cof_err *e)
{
	*out = NULL;
	struct rpc_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	srv->opts = *opts;
	list_init(&srv->live);
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	pthread_cond_init(&srv->reaper_cv, NULL);
	/* The defaults are the settings table's (server/daemon/settings.c). */
	srv->max_calls = opts->max_calls > 0 ? opts->max_calls : INT_MAX;
	srv->max_streams = opts->max_streams > 0 ? opts->max_streams : INT_MAX;
	create_core(srv, opts);
	size_t per = (size_t)(opts->slots_per_method > 0 ? opts->slots_per_method : 1);
	int rc = register_methods(srv, bindings, n_bindings, per, e);
	if (rc == 0)
		rc = listen_on(srv, opts, e);
	if (rc == 0)
		rc = start_threads(srv, opts->workers > 0 ? opts->workers : 1, e);
	if (rc != 0) {
		rpc_server_free(srv); /* stops whatever started */
		return rc;
	}
	*out = srv;
	return 0;
}

/* Waits for the shutdown tag, until abs (NULL: no bound); whether it came. */
static bool wait_shutdown(struct rpc_server *srv, const struct timespec *abs)
{
	pthread_mutex_lock(&srv->mu);
	while (!srv->shutdown_done) {
		if (abs == NULL)
			pthread_cond_wait(&srv->cv, &srv->mu);
		else if (pthread_cond_timedwait(&srv->cv, &srv->mu, abs) != 0)
			break;
	}
	bool done = srv->shutdown_done;
	pthread_mutex_unlock(&srv->mu);
	return done;
}

/* Streams carried by the local transport, which gRPC's cancel_all_calls does not reach. */
static void cancel_local_streams(struct rpc_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	struct rpc_ctx *c;
	list_for_each_entry(c, &srv->live, node)
	{
		if (c->transport == &rpc__local_transport && c->is_stream)
			c->transport->cancel(c, "the server is stopping");
	}
	pthread_mutex_unlock(&srv->mu);
}

/* With workers: the calls in flight get grace_seconds, then are cancelled; then the wait for every
 * call to be answered and closed (and every stream released by the application). */
static void drain_calls(struct rpc_server *srv, int grace_seconds)
{
	struct timespec abs;
	clock_gettime(CLOCK_REALTIME, &abs);
	abs.tv_sec += grace_seconds;
	if (!wait_shutdown(srv, &abs)) {
		log_warn("grace period of %d s over: cancelling the calls still running",
		         grace_seconds);
		grpc_server_cancel_all_calls(srv->server);
		cancel_local_streams(srv);
		if (srv->opts.on_drain)
			srv->opts.on_drain(srv->opts.app);
		wait_shutdown(srv, NULL);
	}
	pthread_mutex_lock(&srv->mu);
	while (srv->n_calls > 0)
		pthread_cond_wait(&srv->cv, &srv->mu);
	pthread_mutex_unlock(&srv->mu);
}

/* Without workers (a start that failed): the queue is drained here, slots let go of. */
static void drain_queue(struct rpc_server *srv)
{
	grpc_server_cancel_all_calls(srv->server);
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(
		        srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type != GRPC_OP_COMPLETE || ev.tag == &srv->shutdown_tag)
			break;
		struct rpc_tag *t = ev.tag;
		if (t->kind == TAG_SLOT)
			rpc__grpc_arrived(srv, (struct rpc_slot *)t, false);
	}
}

void rpc_server_shutdown(struct rpc_server *srv, int grace_seconds)
{
	if (srv == NULL || srv->stopped || srv->server == NULL)
		return;
	srv->stopped = true;
	atomic_store(&srv->shutting_down, true);
	grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
	/* Calls that wait for something (a revision, changes to watch) are answered now, so that
	 * their clients move to another replica instead of waiting out the grace period. */
	if (srv->n_started > 0 && srv->opts.on_drain)
		srv->opts.on_drain(srv->opts.app);
	if (srv->n_started > 0)
		drain_calls(srv, grace_seconds);
	else
		drain_queue(srv);
	pthread_mutex_lock(&srv->mu);
	srv->stopping = true;
	pthread_cond_broadcast(&srv->reaper_cv);
	pthread_mutex_unlock(&srv->mu);
	if (srv->reaper_started)
		pthread_join(srv->reaper, NULL);
	srv->reaper_started = false;
	grpc_completion_queue_shutdown(srv->cq);
	for (int i = 0; i < srv->n_started; i++)
		pthread_join(srv->workers[i], NULL);
	if (srv->n_started == 0) {
		while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		               .type != GRPC_QUEUE_SHUTDOWN)
			;
	}
	srv->n_started = 0;
}

void rpc_server_free(struct rpc_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->server) {
		rpc_server_shutdown(srv, 0);
		grpc_server_destroy(srv->server);
	}
	if (srv->cq)
		grpc_completion_queue_destroy(srv->cq);
	free(srv->slots);
	free(srv->workers);
	pthread_cond_destroy(&srv->cv);
	pthread_cond_destroy(&srv->reaper_cv);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}
