/* server.c - start-up, wiring and stop (see server.h). */
#include "server.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "audit.h"
#include "bootstrap.h"
#include "cache.h"
#include "clock.h"
#include "coffer_limits.h"
#include "crypt.h"
#include "domain.h"
#include "http.h"
#include "http_json.h"
#include "pbjson.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "rpc.h"
#include "run.h"
#include "session.h"

struct server {
	struct settings cfg;      /* a copy of the settings (their strings are the caller's) */
	struct crypt_keyring *kr; /* data keys and the token key */
	struct domain *domain;    /* connection pool and keyring */
	struct audit *audit;      /* the audit writer */
	struct metrics *metrics;  /* counters */
	struct http_server *metrics_http; /* the /metrics listener */
	struct http_json *json;   /* the HTTP listener's application (Connect, REST, console) */
	struct http_server *http; /* its listener */
	pthread_mutex_t http_mu;  /* http as the metrics read it, against its stop */
	struct api *api;          /* the services */
	struct rpc_server *rpc;   /* the gRPC runtime */
	struct tls_files tls;     /* PEM contents */
	const char **paths;       /* every method path, for the metrics */
};

int server_global_init(void)
{
	if (crypt_init() != 0)
		return COF_EINTERNAL;
	rpc_global_init();
	pbjson_init(); /* jansson wipes what it frees: Connect's requests hold values */
	return 0;
}

void server_global_shutdown(void)
{
	rpc_global_shutdown();
}

int server_migrate(const struct settings *cfg, int connect_wait_s, struct cof_err *e)
{
	struct session ss;
	int rc = session_connect(cfg->database_url, NULL, connect_wait_s, &ss, e);
	int applied = 0;
	if (rc == 0 && (rc = session_migrate(&ss, &applied, e)) == 0)
		log_info("database schema is up to date (%d migration%s applied)", applied,
		         applied == 1 ? "" : "s");
	session_close(&ss);
	return rc;
}

/* Threads the gRPC runtime gets when the settings leave it open: one per CPU this process may
 * run on (at most 16: they never wait, so more add nothing). */
static int cpus(void)
{
	cpu_set_t set;
	int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
	                                                     : (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 16 ? 16 : n;
}

/* Whether a listen address (host:port) is a loopback one. */
static bool loopback(const char *listen)
{
	char host[256];
	snprintf(host, sizeof(host), "%s", listen ? listen : "");
	char *colon = strrchr(host, ':');
	if (colon)
		*colon = '\0';
	return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	       strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* The checks and one-time set-up that run on a connection of their own before serving. */
static int prepare_database(struct server *srv, int connect_wait_s, struct cof_err *e)
{
	const struct settings *cfg = &srv->cfg;
	struct session ss;
	int rc = session_connect(cfg->database_url, srv->kr, connect_wait_s, &ss, e);
	int applied = 0;
	if (rc || (cfg->migrate && (rc = session_migrate(&ss, &applied, e))) ||
	    (rc = session_check_schema(&ss, e)) || (rc = keys_load(&ss, true, e)) ||
	    (rc = keys_load_token_key(&ss, e)))
		goto out;
	if (cfg->insecure_no_auth)
		log_warn("!!! AUTHENTICATION IS OFF (--insecure-no-auth): every caller may do "
		         "anything. Never run this way outside local development. !!!");
	else
		rc = bootstrap_token(&ss, cfg->bootstrap_token_file, e);
out:
	session_close(&ss);
	return rc;
}

static double gauge_db_up(void *arg)
{
	int up = 0, down = 0;
	domain_connection_states(arg, &up, &down);
	return up;
}

static double gauge_db_down(void *arg)
{
	int up = 0, down = 0;
	domain_connection_states(arg, &up, &down);
	return down;
}

static double gauge_audit_backlog(void *arg)
{
	return audit_backlog(arg);
}

static double gauge_active_term(void *arg)
{
	return crypt_keyring_active_term(arg);
}

static double gauge_workers(void *arg)
{
	return ((const struct server *)arg)->cfg.workers;
}

static double gauge_calls(void *arg)
{
	const struct server *srv = arg;
	return srv->rpc ? rpc_server_calls(srv->rpc) : 0;
}

static double gauge_db_queue(void *arg)
{
	return api_db_backlog(arg);
}

static double gauge_waits(void *arg)
{
	return api_parked(arg);
}

/* After the calls have ended, how long HTTP answers have to reach their clients. */

static double gauge_http_connections(void *arg)
{
	struct server *srv = arg;
	pthread_mutex_lock(&srv->http_mu);
	double n = http_connections(srv->http);
	pthread_mutex_unlock(&srv->http_mu);
	return n;
}

/* Stops the HTTP/JSON listener (waiting up to wait_ms for its requests); the metrics no longer
 * read it. */
static void stop_http(struct server *srv, int wait_ms)
{
	pthread_mutex_lock(&srv->http_mu);
	struct http_server *h = srv->http;
	srv->http = NULL;
	pthread_mutex_unlock(&srv->http_mu);
	http_stop(h, wait_ms);
}

static double gauge_watches(void *arg)
{
	return api_watching(arg);
}

#define CACHE_GAUGE(fname, field)                                                                  \
	static double fname(void *arg)                                                             \
	{                                                                                          \
		struct cache_stats st;                                                             \
		domain_cache_stats(arg, &st);                                                      \
		return (double)st.field;                                                           \
	}
CACHE_GAUGE(gauge_cache_bytes, bytes)
CACHE_GAUGE(gauge_cache_sets, sets)
CACHE_GAUGE(gauge_cache_tokens, tokens)
CACHE_GAUGE(gauge_cache_hits, hits)
CACHE_GAUGE(gauge_cache_misses, misses)
CACHE_GAUGE(gauge_cache_answer_hits, answer_hits)
CACHE_GAUGE(gauge_cache_enabled, enabled)
#undef CACHE_GAUGE

/* GET /metrics: the Prometheus text; anything else: 404. */
static void serve_metrics(void *app, struct http_request *req)
{
	if (strcmp(http_path(req), "/metrics") != 0) {
		char *body = strdup("not found: try /metrics\n");
		http_answer(req, 404, NULL, body, body ? strlen(body) : 0);
		return;
	}
	char *text = metrics_render(app);
	http_answer(req, text ? 200 : 500, "text/plain; version=0.0.4; charset=utf-8", text,
	            text ? strlen(text) : 0);
}

static int start_metrics(struct server *srv, struct cof_err *e)
{
	size_t n = 0;
	for (size_t b = 0; b < api_n_bindings; b++)
		n += api_bindings[b].service->n_methods;
	srv->paths = calloc(n + 1, sizeof(*srv->paths));
	if (srv->paths == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	n = 0;
	for (size_t b = 0; b < api_n_bindings; b++)
		for (size_t k = 0; k < api_bindings[b].service->n_methods; k++)
			srv->paths[n++] = api_bindings[b].service->methods[k].path;
	int rc = metrics_new(srv->paths, n, &srv->metrics, e);
	if (rc)
		return rc;
	static const char db_help[] = "Database connections by their last known state.";
	if (metrics_gauge(srv->metrics, "coffer_db_connections", "state=\"up\"", db_help,
	                  gauge_db_up, srv->domain) ||
	    metrics_gauge(srv->metrics, "coffer_db_connections", "state=\"down\"", db_help,
	                  gauge_db_down, srv->domain) ||
	    metrics_gauge(srv->metrics, "coffer_audit_backlog", NULL,
	                  "Audit rows waiting to be written.", gauge_audit_backlog, srv->audit) ||
	    metrics_gauge(srv->metrics, "coffer_keyring_active_term", NULL,
	                  "The keyring term new values are sealed under.", gauge_active_term,
	                  srv->kr) ||
	    metrics_gauge(srv->metrics, "coffer_workers", NULL,
	                  "gRPC threads on the completion queue.", gauge_workers, srv) ||
	    metrics_gauge(srv->metrics, "coffer_calls_in_flight", NULL,
	                  "Calls received and not yet answered and closed.", gauge_calls, srv) ||
	    metrics_gauge(srv->metrics, "coffer_db_queue", NULL,
	                  "Calls waiting for a database thread.", gauge_db_queue, srv->api) ||
	    metrics_gauge(srv->metrics, "coffer_waiting_for_revision", NULL,
	                  "Resolves parked until their project reaches min_revision.", gauge_waits,
	                  srv->api) ||
	    metrics_gauge(srv->metrics, "coffer_watch_streams", NULL,
	                  "WatchSecrets streams open on this replica.", gauge_watches, srv->api) ||
	    metrics_gauge(srv->metrics, "coffer_http_connections", NULL,
	                  "Connections open to the HTTP listener on this replica.",
	                  gauge_http_connections, srv) ||
	    metrics_gauge(srv->metrics, "coffer_cache_enabled", NULL,
	                  "1 while the change listener listens and the cache serves.",
	                  gauge_cache_enabled, srv->domain) ||
	    metrics_gauge(srv->metrics, "coffer_cache_bytes", NULL,
	                  "Memory held by cached resolve rows (sealed values).", gauge_cache_bytes,
	                  srv->domain) ||
	    metrics_gauge(srv->metrics, "coffer_cache_entries", NULL,
	                  "Cached (project, environment, version) row sets.", gauge_cache_sets,
	                  srv->domain) ||
	    metrics_gauge(srv->metrics, "coffer_cache_tokens", NULL, "Cached token lookups.",
	                  gauge_cache_tokens, srv->domain) ||
	    metrics_gauge(srv->metrics, "coffer_cache_hits_total", NULL,
	                  "Resolves served from the cache.", gauge_cache_hits, srv->domain) ||
	    metrics_gauge(srv->metrics, "coffer_cache_misses_total", NULL,
	                  "Resolves that read the database.", gauge_cache_misses, srv->domain) ||
	    metrics_gauge(srv->metrics, "coffer_cache_answer_hits_total", NULL,
	                  "Resolves answered with the whole answer kept sealed for their state "
	                  "(one opening instead of one per value).",
	                  gauge_cache_answer_hits, srv->domain))
		return cof_err_set(e, COF_EINTERNAL, "too many gauges");
	if (srv->cfg.metrics_listen == NULL || *srv->cfg.metrics_listen == '\0')
		return 0;
	struct http_opts o = {
	        .name = "metrics",
	        .listen = srv->cfg.metrics_listen,
	        .max_connections = 64,
	        .max_per_address = 16,
	        .head_timeout_ms = 2000,
	        .handler = serve_metrics,
	        .app = srv->metrics,
	};
	if ((rc = http_start(&o, &srv->metrics_http, e)))
		return rc;
	log_info("serving metrics on http://%s/metrics", srv->cfg.metrics_listen);
	return 0;
}

/* The HTTP listener (Connect, the REST reads, the console), over the running gRPC server, with
 * gRPC's TLS settings. */
static int start_http(struct server *srv, struct cof_err *e)
{
	const struct settings *cfg = &srv->cfg;
	if (cfg->http_listen == NULL || *cfg->http_listen == '\0')
		return 0;
	if (http_json_new(srv->rpc, cfg->console, &srv->json) != 0)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	struct http_opts o = {
	        .name = "http",
	        .listen = cfg->http_listen,
	        .tls_cert_pem = srv->tls.cert,
	        .tls_key_pem = srv->tls.key,
	        .tls_client_ca_pem = srv->tls.client_ca,
	        .max_connections = cfg->http_max_connections,
	        .max_per_address =
	                cfg->http_max_connections / 4 > 0 ? cfg->http_max_connections / 4 : 1,
	        .max_body_bytes = (size_t)cfg->max_message_bytes,
	        .handler = http_json_handle,
	        .error = http_json_error,
	        .takes_body = http_json_takes_body,
	        .app = srv->json,
	};
	struct http_server *h = NULL;
	int rc = http_start(&o, &h, e);
	pthread_mutex_lock(&srv->http_mu);
	srv->http = h;
	pthread_mutex_unlock(&srv->http_mu);
	if (rc == 0)
		log_info("serving Connect and the REST reads on %s://%s/",
		         srv->tls.cert ? "https" : "http", cfg->http_listen);
	return rc;
}

/* Frees what server_start made, in reverse order. NULL-safe members. */
static void server_free(struct server *srv)
{
	stop_http(srv, 0);
	http_json_free(srv->json);
	rpc_server_free(srv->rpc);
	srv->rpc = NULL;
	api_free(srv->api);
	srv->api = NULL;
	http_stop(srv->metrics_http, 0);
	srv->metrics_http = NULL;
	metrics_free(srv->metrics);
	srv->metrics = NULL;
	audit_stop(srv->audit);
	srv->audit = NULL;
	domain_free(srv->domain);
	bootstrap_tls_free(&srv->tls);
	crypt_keyring_free(srv->kr);
	free(srv->paths);
	pthread_mutex_destroy(&srv->http_mu);
	free(srv);
}

/* What the settings alone decide, checked before anything else is touched: the TLS files, and
 * no plaintext off loopback unless --allow-plaintext says a mesh or proxy encrypts it. */
static int check_exposure(struct server *srv, const struct settings *cfg, struct cof_err *e)
{
	int rc = bootstrap_tls(cfg, &srv->tls, e);
	if (rc != 0 || srv->tls.cert != NULL)
		return rc;
	static const char fix[] = "set --tls-cert-file and --tls-key-file, or --allow-plaintext "
	                          "when a mesh or proxy encrypts the traffic";
	if (!loopback(cfg->listen) && !cfg->allow_plaintext)
		return cof_err_set(e, COF_EINVAL,
		                   "refusing to serve plaintext on %s, which is not a loopback "
		                   "address: %s",
		                   cfg->listen, fix);
	if (cfg->http_listen && *cfg->http_listen && !loopback(cfg->http_listen) &&
	    !cfg->allow_plaintext)
		return cof_err_set(
		        e, COF_EINVAL,
		        "refusing to serve plaintext HTTP on %s, which is not a loopback "
		        "address: %s",
		        cfg->http_listen, fix);
	if (!loopback(cfg->listen))
		log_warn(
		        "serving plaintext gRPC on %s (--allow-plaintext): tokens and values cross "
		        "the network in clear unless a mesh encrypts them",
		        cfg->listen);
	return 0;
}

/* The domain over the pool, the audit writer on its own connection, the api (one connection per
 * database thread; the audit writer and the listener have their own) and its metrics. */
static int start_domain_and_api(struct server *srv, const struct settings *cfg, struct cof_err *e)
{
	struct api_config acfg = {
	        .db_threads = cfg->db_connections,
	        .watch_heartbeat_ms = cfg->watch_heartbeat_seconds * 1000,
	        .watch_per_token = cfg->max_watches_per_token,
	        .db_queue = cfg->max_calls,
	        .insecure_no_auth = cfg->insecure_no_auth,
	        .unauthenticated_limit = cfg->unauthenticated_limit,
	        .statement_timeout_ms = cfg->statement_timeout_ms,
	        .rate_limit = cfg->rate_limit,
	        .rate_burst = cfg->rate_burst,
	        .session_idle_s = cfg->console_idle_minutes * 60,
	        .session_max_s = cfg->console_max_hours * 3600,
	        .reveal_s = cfg->console_reveal_seconds,
	};
	struct audit_opts audit = {.sink = domain_audit_sink,
	                           .idle = domain_audit_idle,
	                           .max_backlog = cfg->audit_max_backlog};
	int rc;
	if ((rc = domain_new(cfg->database_url, cfg->notify_database_url, cfg->db_connections,
	                     (size_t)cfg->cache_mb << 20, srv->kr, &srv->domain, e)))
		return rc;
	audit.arg = srv->domain;
	if ((rc = audit_start(&audit, &srv->audit, e)) ||
	    (rc = api_new(&acfg, srv->domain, srv->audit, NULL, &srv->api, e)) ||
	    (rc = start_metrics(srv, e)))
		return rc;
	api_set_metrics(srv->api, srv->metrics);
	return 0;
}

/* The gRPC server over the api. */
static int start_rpc(struct server *srv, const struct settings *cfg, struct cof_err *e)
{
	struct rpc_server_opts opts = {
	        .listen = cfg->listen,
	        .workers = srv->cfg.workers,
	        .max_calls = cfg->max_calls,
	        .slots_per_method = cfg->slots_per_method,
	        .max_message_bytes = cfg->max_message_bytes,
	        .stream_idle_ms = cfg->stream_idle_seconds * 1000,
	        .send_timeout_ms = cfg->send_timeout_seconds * 1000,
	        .max_streams = cfg->max_streams,
	        .max_streams_per_connection = cfg->max_streams_per_connection,
	        .app = srv->api,
	        .unary = api_unary,
	        .stream = api_stream,
	        .on_call = api_on_call,
	        .on_drain = api_drain,
	        .tls_cert_pem = srv->tls.cert,
	        .tls_key_pem = srv->tls.key,
	        .tls_client_ca_pem = srv->tls.client_ca,
	};
	return rpc_server_start(&opts, api_bindings, api_n_bindings, &srv->rpc, e);
}

int server_start(const struct settings *cfg, int connect_wait_s, struct server **out,
                 struct cof_err *e)
{
	*out = NULL;
	struct server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	srv->cfg = *cfg;
	pthread_mutex_init(&srv->http_mu, NULL);
	if (srv->cfg.workers <= 0) /* 0: one per CPU */
		srv->cfg.workers = cpus();
	int rc;
	if ((rc = check_exposure(srv, cfg, e)) ||
	    (rc = crypt_keyring_new(cfg->root_key_file, &srv->kr, e)) ||
	    (rc = prepare_database(srv, connect_wait_s, e)) ||
	    (rc = start_domain_and_api(srv, cfg, e)) || (rc = start_rpc(srv, cfg, e)) ||
	    (rc = start_http(srv, e))) {
		server_free(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

int server_metrics_port(const struct server *srv)
{
	return http_port(srv->metrics_http);
}

int server_http_port(const struct server *srv)
{
	return http_port(srv->http);
}

int server_workers(const struct server *srv)
{
	return srv->cfg.workers;
}

int server_port(const struct server *srv)
{
	return rpc_server_port(srv->rpc);
}

/* After the grace, how long the rest of the stop may take before the process is ended. */
#define STOP_WATCHDOG_MS 10000

/* The stop's clock: when the grace is over, every wait for the database ends at once; if the
 * stop is still not done STOP_WATCHDOG_MS later, the process ends (it has nothing left that
 * must be kept: every answer that could be given was). */
struct stop_timer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;             /* the stop finished */
	int grace_ms;          /* the grace */
	struct domain *domain; /* what to abort */
};

/* Waits until ms from now or the stop is done; whether it is done. */
static bool stop_wait(struct stop_timer *t, int64_t ms)
{
	struct timespec until = clock_realtime_after_ms(ms);
	pthread_mutex_lock(&t->mu);
	while (!t->done && pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
		;
	bool done = t->done;
	pthread_mutex_unlock(&t->mu);
	return done;
}

static void *stop_clock(void *arg)
{
	struct stop_timer *t = arg;
	if (stop_wait(t, t->grace_ms))
		return NULL;
	domain_abort(t->domain);
	if (stop_wait(t, STOP_WATCHDOG_MS))
		return NULL;
	log_error("the stop did not finish %d s after the grace: exiting now",
	          STOP_WATCHDOG_MS / 1000);
	_exit(1);
}

void server_stop(struct server *srv, int grace_seconds)
{
	if (srv == NULL)
		return;
	struct stop_timer t = {.grace_ms = grace_seconds * 1000, .domain = srv->domain};
	pthread_mutex_init(&t.mu, NULL);
	pthread_cond_init(&t.cv, NULL);
	pthread_t clock;
	bool ticking = pthread_create(&clock, NULL, stop_clock, &t) == 0;
	/* HTTP requests in flight are calls of the gRPC runtime: they end within its grace (new
	 * ones are refused, UNAVAILABLE); then their answers have a moment to go out. */
	http_quiesce(srv->http);
	rpc_server_shutdown(srv->rpc, grace_seconds);
	stop_http(srv, LIMIT_HTTP_DRAIN_MS);
	/* Everything that may still wait for the database stops while the clock may abort it;
	 * then the clock stops, and the domain goes last. */
	rpc_server_free(srv->rpc);
	srv->rpc = NULL;
	api_free(srv->api);
	srv->api = NULL;
	audit_stop(srv->audit);
	srv->audit = NULL;
	pthread_mutex_lock(&t.mu);
	t.done = true;
	pthread_cond_broadcast(&t.cv);
	pthread_mutex_unlock(&t.mu);
	if (ticking)
		pthread_join(clock, NULL);
	pthread_cond_destroy(&t.cv);
	pthread_mutex_destroy(&t.mu);
	server_free(srv);
}
