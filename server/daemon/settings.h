/*
 * settings.h - cofferd's settings: one table, each setting a flag and a COFFER_* environment
 * variable.
 *
 * Precedence: built-in default < environment variable < command-line flag.
 */
#ifndef COFFER_SETTINGS_H
#define COFFER_SETTINGS_H

#include <stdbool.h>
#include <stdio.h>

struct settings {
	char *listen;              /* gRPC address, host:port */
	char *database_url;        /* libpq connection string or URI */
	char *notify_database_url; /* for LISTEN; "": database_url */
	char *root_key_file;       /* 32-byte root key (raw or 64 hex digits) */
	char *log_level;           /* debug, info, warn, error */
	int workers;               /* gRPC threads on the shared completion queue; 0: one per CPU */
	int db_connections;        /* database threads, one connection each */
	int max_calls;             /* calls in flight at once on this replica */
	int cache_mb;              /* memory for cached resolve rows; 0: none */
	int slots_per_method;      /* request slots pre-posted per method */
	int max_message_bytes;     /* largest request accepted; larger is RESOURCE_EXHAUSTED */
	int grace_seconds;         /* shutdown: how long in-flight calls may finish */
	int statement_timeout_ms;  /* bound on a statement when the call has no deadline */
	bool migrate;              /* apply migrations at start-up */
	bool insecure_no_auth;     /* serve without authentication (local development only) */
	char *bootstrap_token_file; /* first admin token: read from or written to this file */
	char *tls_cert_file;        /* server certificate chain (PEM); none: plaintext */
	char *tls_key_file;         /* its private key (PEM) */
	char *tls_client_ca_file;   /* CA of client certificates; set: mTLS required */
	char *metrics_listen;       /* host:port of the /metrics listener; "": none */
	char *http_listen;          /* host:port of the HTTP listener; "": none */
	int http_max_connections;   /* HTTP connections at once */
	bool console;               /* the web console at / of the HTTP listener */
	int console_idle_minutes;   /* a console session unused this long ends */
	int console_max_hours;      /* and ends this long after sign-in */
	int console_reveal_seconds; /* a revealed value shows (a copied one stays) this long */
	int rate_limit;             /* calls per second per token on this replica; 0: none */
	int rate_burst;             /* calls a token may make at once; 0: twice rate_limit */
	int unauthenticated_limit;  /* calls without a valid token per second per address */
	int stream_idle_seconds;    /* a stream whose client sends nothing this long is closed */
	int send_timeout_seconds;   /* a client that takes no answer this long is cancelled */
	int max_streams;            /* streaming calls at once on this replica */
	int max_streams_per_connection; /* HTTP/2 streams (calls) one connection carries at once */
	int watch_heartbeat_seconds;    /* a quiet watch stream gets a heartbeat after this long */
	int max_watches_per_token;      /* watch streams one token may hold on a replica */
	int audit_max_backlog;          /* audit rows that may wait at once; more: calls refused */
	bool allow_plaintext;           /* serve without TLS on an address other than loopback */
};

/* Fills cfg with defaults, then the environment. Returns 0, or -1 with a message on stderr. */
int settings_from_env(struct settings *cfg);
/* Applies --flag=value / --flag value arguments from argv[first..argc). Returns 0 or -1. */
int settings_from_args(struct settings *cfg, int argc, char **argv, int first);
/* Prints the settings table (flag, variable, default, meaning). */
void settings_usage(FILE *out);
void settings_free(struct settings *cfg);

#endif
