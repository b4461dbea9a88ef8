/*
 * state.h - what every call of the api room shares: the access settings, the domain, the audit
 * writer, the metrics and the rate limits. One struct api per server, made by api_new.
 */
#ifndef COFFER_API_STATE_H
#define COFFER_API_STATE_H

#include <stdatomic.h>
#include <stdbool.h>

struct domain;
struct audit;
struct metrics;
struct ratelimit;
struct workq;
struct waits;
struct watch_streams;

struct api_config {
	bool insecure_no_auth;     /* every call is allowed (local development only) */
	int statement_timeout_ms;  /* bound on a statement when the call has no deadline */
	int rate_limit;            /* calls per second per token; 0: none */
	int rate_burst;            /* calls a token may make at once; 0: twice rate_limit */
	int unauthenticated_limit; /* calls without a valid token per second per address */
	int db_threads;            /* threads that run calls needing the database (one connection
	                              each); 0: no database (calls that need it: UNAVAILABLE) */
	int db_queue;           /* calls that may wait for a database thread; more: UNAVAILABLE */
	int watch_heartbeat_ms; /* a quiet watch stream gets a heartbeat after this long */
	int watch_per_token;    /* watch streams a token may hold at once on a replica */
	int session_idle_s;     /* a console session unused this long ends */
	int session_max_s;      /* and ends this long after sign-in */
	int reveal_s;           /* the console shows a revealed value this long */
};

struct api {
	struct api_config cfg;             /* access settings */
	struct domain *domain;             /* connection pool and keyring */
	struct audit *audit;               /* the audit writer */
	struct metrics *metrics;           /* counters */
	struct ratelimit *rate;            /* per-token buckets, or NULL */
	struct ratelimit *unauthenticated; /* per-address buckets of calls without a valid token */
	struct workq *jobs;                /* the database threads, or NULL */
	struct waits *waits;               /* calls parked for a revision, or NULL */
	struct watch_streams *watches;     /* WatchSecrets streams, or NULL */
	atomic_bool draining;              /* shutting down: nothing parks any more */
};

#endif
