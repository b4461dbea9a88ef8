/*
 * watches.h - the WatchSecrets streams of a replica (watches.c): opening one, the project and token
 * changes that move or end them, heartbeats, and ending them all at shutdown.
 */
#ifndef COFFER_WATCHES_H
#define COFFER_WATCHES_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"

struct watches;

/* A registry for api's streams: heartbeats after heartbeat_ms of quiet, at most per_token streams
 * per token. 0, or -1 when out of memory. */
int watches_new(struct api *api, int heartbeat_ms, int per_token, struct watches **out);
/* Stops the heartbeats; every stream must be over. NULL-safe. */
void watches_free(struct watches *ws);
/* Takes the call's stream over (the handler returns what this returns: RPC_PENDING, or a code). */
int watch_open(struct watches *ws, struct call *c, const Coffer__V1__WatchSecretsRequest *req,
               struct rpc_stream *st);
/* Project project_id is at revision (-1: deleted); project 0: anything may have changed
 * (revision CHANGES_NEW_HISTORY: the database's history moved, and every stream resyncs). Its
 * streams look again. */
void watch_changed(struct watches *ws, int64_t project_id, int64_t revision);
/* Token token_id was revoked: its streams end (UNAUTHENTICATED). */
void watch_token_revoked(struct watches *ws, const char *token_id);
/* Ends every stream with UNAVAILABLE (shutdown): clients resume on another replica. */
void watches_end_all(struct watches *ws);
/* Streams open now. */
size_t watches_count(struct watches *ws);

#endif
