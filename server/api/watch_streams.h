/*
 * watch_streams.h - the WatchSecrets streams of a replica (watch_streams.c): opening one, the
 * project and token changes that move or end them, heartbeats, and ending them all at shutdown.
 */
#ifndef COFFER_WATCH_STREAMS_H
#define COFFER_WATCH_STREAMS_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"

struct watch_streams;

/* A registry for api's streams: heartbeats after heartbeat_ms of quiet, at most per_token streams
 * per token. 0, or -1 when out of memory. */
int watch_streams_new(struct api *api, int heartbeat_ms, int per_token, struct watch_streams **out);
/* Stops the heartbeats; every stream must be over. NULL-safe. */
void watch_streams_free(struct watch_streams *ws);
/* Takes the call's stream over (the handler returns what this returns: RPC_PENDING, or a code). */
int watch_open(struct watch_streams *ws, struct call *c, const Coffer__V1__WatchSecretsRequest *req,
               struct rpc_stream *st);
/* Project project_id is at revision (-1: deleted); project 0: anything may have changed
 * (revision LISTENER_NEW_HISTORY: the database's history moved, and every stream resyncs). Its
 * streams look again. */
void watch_streams_changed(struct watch_streams *ws, int64_t project_id, int64_t revision);
/* Token token_id was revoked: its streams end (UNAUTHENTICATED). */
void watch_streams_token_revoked(struct watch_streams *ws, const char *token_id);
/* Ends every stream with UNAVAILABLE (shutdown): clients resume on another replica. */
void watch_streams_end_all(struct watch_streams *ws);
/* Streams open now. */
size_t watch_streams_count(struct watch_streams *ws);

#endif
