/* settings.c - the settings table and its parsers (see settings.h). */
#include "settings.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "coffer_shared.h"

enum kind { K_STR, K_INT, K_BOOL };

struct setting {
	const char *flag; /* "listen" for --listen */
	const char *env;  /* "COFFER_LISTEN" */
	enum kind kind;   /* how the value parses */
	size_t offset;    /* into struct settings */
	const char *def;  /* default, as text */
	int min, max;     /* range for K_INT */
	const char *help; /* one line */
};

#define S(f) offsetof(struct settings, f)
static const struct setting settings[] = {
        {"listen", "COFFER_LISTEN", K_STR, S(listen), "127.0.0.1:50051", 0, 0,
         "gRPC listen address (host:port)"},
        {"database-url", "COFFER_DATABASE_URL", K_STR, S(database_url), "", 0, 0,
         "PostgreSQL connection string (libpq keywords or postgresql:// URI)"},
        {"notify-database-url", "COFFER_NOTIFY_DATABASE_URL", K_STR, S(notify_database_url), "", 0,
         0,
         "connection that LISTENs for the change notifications (empty: the database URL); "
         "it must reach PostgreSQL directly or through session pooling, never transaction "
         "pooling"},
        {"root-key-file", "COFFER_ROOT_KEY_FILE", K_STR, S(root_key_file), "", 0, 0,
         "file holding the 32-byte root key (raw bytes or 64 hex digits)"},
        {"log-level", "COFFER_LOG_LEVEL", K_STR, S(log_level), "info", 0, 0,
         "debug, info, warn or error"},
        {"workers", "COFFER_WORKERS", K_INT, S(workers), "0", 0, 256,
         "gRPC threads on the shared completion queue (0: one per CPU); they never wait for "
         "a client or the database"},
        {"db-connections", "COFFER_DB_CONNECTIONS", K_INT, S(db_connections), "8", 1, 256,
         "threads that run calls needing the database, one connection each (two more "
         "connections: the change listener and the audit writer)"},
        {"max-calls", "COFFER_MAX_CALLS", K_INT, S(max_calls), "10000", 1, 1000000,
         "unary calls in flight at once on this replica (streams count against "
         "--max-streams); more: RESOURCE_EXHAUSTED"},
        {"cache-mb", "COFFER_CACHE_MB", K_INT, S(cache_mb), "32", 0, 65536,
         "memory for cached resolve rows (sealed values; 0: none), kept coherent by "
         "notifications"},
        {"slots-per-method", "COFFER_SLOTS_PER_METHOD", K_INT, S(slots_per_method), "4", 1, 64,
         "request slots pre-posted per method"},
        {"max-message-bytes", "COFFER_MAX_MESSAGE_BYTES", K_INT, S(max_message_bytes), "4194304",
         1024, 64 << 20, "largest request message accepted"},
        {"grace-seconds", "COFFER_GRACE_SECONDS", K_INT, S(grace_seconds), "10", 0, 3600,
         "on SIGTERM, how long in-flight calls may finish before they are cancelled"},
        {"statement-timeout-ms", "COFFER_STATEMENT_TIMEOUT_MS", K_INT, S(statement_timeout_ms),
         "10000", 1, 3600000, "bound on one SQL statement for calls without a deadline"},
        {"migrate", "COFFER_MIGRATE", K_BOOL, S(migrate), "false", 0, 0,
         "apply pending migrations at start-up"},
        {"bootstrap-token-file", "COFFER_BOOTSTRAP_TOKEN_FILE", K_STR, S(bootstrap_token_file), "",
         0, 0,
         "with no tokens yet: the first admin token is read from this file, or made and written "
         "there"},
        {"insecure-no-auth", "COFFER_INSECURE_NO_AUTH", K_BOOL, S(insecure_no_auth), "false", 0, 0,
         "serve every call without a token (local development only)"},
        {"tls-cert-file", "COFFER_TLS_CERT_FILE", K_STR, S(tls_cert_file), "", 0, 0,
         "server certificate chain (PEM); without it cofferd serves plaintext"},
        {"tls-key-file", "COFFER_TLS_KEY_FILE", K_STR, S(tls_key_file), "", 0, 0,
         "private key of the server certificate (PEM)"},
        {"rate-limit", "COFFER_RATE_LIMIT", K_INT, S(rate_limit), "0", 0, 1000000,
         "calls per second each token may make on this replica (0: no limit)"},
        {"rate-burst", "COFFER_RATE_BURST", K_INT, S(rate_burst), "0", 0, 1000000,
         "calls a token may make at once before the rate applies (0: twice the rate)"},
        {"unauthenticated-limit", "COFFER_UNAUTHENTICATED_LIMIT", K_INT, S(unauthenticated_limit),
         "20", 1, 1000000,
         "calls without a valid token each address may make per second (twice that at once); "
         "more: RESOURCE_EXHAUSTED, counted in one audit row"},
        {"stream-idle-seconds", "COFFER_STREAM_IDLE_SECONDS", K_INT, S(stream_idle_seconds), "30",
         1, 3600, "a stream whose client sends nothing for this long is closed"},
        {"send-timeout-seconds", "COFFER_SEND_TIMEOUT_SECONDS", K_INT, S(send_timeout_seconds),
         "10", 1, 3600, "a client that does not take its answer within this long is cancelled"},
        {"max-streams", "COFFER_MAX_STREAMS", K_INT, S(max_streams), "1000", 1, 100000,
         "streaming calls at once on this replica; more: RESOURCE_EXHAUSTED"},
        {"max-streams-per-connection", "COFFER_MAX_STREAMS_PER_CONNECTION", K_INT,
         S(max_streams_per_connection), "100", 1, 100000,
         "calls (HTTP/2 streams) one client connection carries at once; a client needs more "
         "connections for more"},
        {"watch-heartbeat-seconds", "COFFER_WATCH_HEARTBEAT_SECONDS", K_INT,
         S(watch_heartbeat_seconds), "15", 1, 3600,
         "a WatchSecrets stream that has nothing to say for this long gets a heartbeat (keeps "
         "proxies from closing it)"},
        {"max-watches-per-token", "COFFER_MAX_WATCHES_PER_TOKEN", K_INT, S(max_watches_per_token),
         "256", 1, 100000, "WatchSecrets streams one token may hold at once on a replica"},
        {"audit-max-backlog", "COFFER_AUDIT_MAX_BACKLOG", K_INT, S(audit_max_backlog), "100000", 1,
         10000000,
         "audit rows that may wait for their commit at once; a call whose row cannot be queued "
         "is refused (UNAVAILABLE), never answered without it"},
        {"allow-plaintext", "COFFER_ALLOW_PLAINTEXT", K_BOOL, S(allow_plaintext), "false", 0, 0,
         "serve plaintext on an address other than loopback (a mesh or proxy encrypts)"},
        {"metrics-listen", "COFFER_METRICS_LISTEN", K_STR, S(metrics_listen), "127.0.0.1:9464", 0,
         0, "Prometheus /metrics listener (host:port); empty: none"},
        {"http-listen", "COFFER_HTTP_LISTEN", K_STR, S(http_listen), "", 0, 0,
         "HTTP listener (host:port): every RPC over Connect and the read-only REST paths, with "
         "the same TLS as gRPC; empty: none"},
        {"console", "COFFER_CONSOLE", K_BOOL, S(console), "false", 0, 0,
         "serve the web console at / of the HTTP listener (docs/console.md)"},
        {"console-idle-minutes", "COFFER_CONSOLE_IDLE_MINUTES", K_INT, S(console_idle_minutes),
         "15", 1, 1440, "a console session unused this long ends"},
        {"console-max-hours", "COFFER_CONSOLE_MAX_HOURS", K_INT, S(console_max_hours), "12", 1, 168,
         "a console session ends this long after sign-in, however used"},
        {"console-reveal-seconds", "COFFER_CONSOLE_REVEAL_SECONDS", K_INT,
         S(console_reveal_seconds), "30", 1, 600,
         "the console shows a revealed value, and keeps a copied one on the clipboard, this long"},
        {"http-max-connections", "COFFER_HTTP_MAX_CONNECTIONS", K_INT, S(http_max_connections),
         "256", 1, 100000,
         "HTTP connections at once on this replica (a quarter of them from one address)"},
        {"tls-client-ca-file", "COFFER_TLS_CLIENT_CA_FILE", K_STR, S(tls_client_ca_file), "", 0, 0,
         "CA bundle (PEM) of client certificates; when set, clients must present one (mTLS)"},
};
#undef S

static int set_value(struct settings *cfg, const struct setting *s, const char *value)
{
	void *field = (char *)cfg + s->offset;
	switch (s->kind) {
	case K_STR: {
		char *copy = strdup(value);
		if (copy == NULL)
			return -1;
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case K_INT: {
		long long v;
		if (!coffer_parse_num(value, s->min, s->max, &v)) {
			fprintf(stderr, "cofferd: --%s must be a whole number from %d to %d\n",
			        s->flag, s->min, s->max);
			return -1;
		}
		*(int *)field = (int)v;
		return 0;
	}
	case K_BOOL:
		if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
		    strcmp(value, "yes") == 0) {
			*(bool *)field = true;
		} else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
		           strcmp(value, "no") == 0) {
			*(bool *)field = false;
		} else {
			fprintf(stderr, "cofferd: --%s must be true or false\n", s->flag);
			return -1;
		}
		return 0;
	}
	return -1;
}

int settings_from_env(struct settings *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		const struct setting *s = &settings[i];
		const char *env = getenv(s->env);
		if (set_value(cfg, s, s->def) < 0)
			return -1;
		if (env != NULL && set_value(cfg, s, env) < 0)
			return -1;
	}
	return 0;
}

int settings_from_args(struct settings *cfg, int argc, char **argv, int first)
{
	for (int i = first; i < argc; i++) {
		const char *eq_value;
		size_t name_len = coffer_opt_split(argv[i], &eq_value);
		if (name_len == 0) {
			fprintf(stderr, "cofferd: unexpected argument '%s'\n", argv[i]);
			return -1;
		}
		const char *arg = argv[i] + 2;
		name_len -= 2;
		const struct setting *s = NULL;
		for (size_t k = 0; k < sizeof(settings) / sizeof(settings[0]); k++) {
			if (strlen(settings[k].flag) == name_len &&
			    strncmp(settings[k].flag, arg, name_len) == 0)
				s = &settings[k];
		}
		if (s == NULL) {
			fprintf(stderr, "cofferd: unknown option '--%.*s' (see cofferd --help)\n",
			        (int)name_len, arg);
			return -1;
		}
		const char *value = s->kind == K_BOOL && eq_value == NULL
		                            ? "true"
		                            : coffer_opt_value(argc, argv, &i, eq_value);
		if (value == NULL) {
			fprintf(stderr, "cofferd: --%s needs a value\n", s->flag);
			return -1;
		}
		if (set_value(cfg, s, value) < 0)
			return -1;
	}
	return 0;
}

void settings_usage(FILE *out)
{
	fprintf(out, "Settings (flag, environment variable, default):\n");
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		const struct setting *s = &settings[i];
		fprintf(out, "  --%-22s %-28s %s\n      %s\n", s->flag, s->env,
		        *s->def ? s->def : "(none)", s->help);
	}
}

void settings_free(struct settings *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (settings[i].kind == K_STR) {
			char **p = (char **)((char *)cfg + settings[i].offset);
			free(*p);
			*p = NULL;
		}
}
