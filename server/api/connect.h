/*
 * connect.h - every RPC over the Connect protocol (connectrpc.com/docs/protocol) on the HTTP
 * listener: POST /<package.Service>/<Method> with JSON (the proto3 mapping) or binary bodies,
 * GET for the methods without side effects, and server streams (WatchSecrets) as enveloped
 * messages. Each request becomes a call of the rpc runtime through the local transport, exactly
 * as a gRPC call of the same method: policy, tokens, scopes, rate limits, the cache, the audit
 * row, metrics, --max-calls and the log line, with no code per method. docs/api.md, "Connect".
 */
#ifndef COFFER_CONNECT_H
#define COFFER_CONNECT_H

#include <stdbool.h>
#include <stddef.h>

struct rpc_server;
struct http_request;

/* Whether path names a method as Connect does ("/coffer.v1.Secrets/ResolveSecrets"). */
bool connect_path(const char *path);

/* Answers a Connect request (path: connect_path) with the methods of rpc. */
void connect_handle(struct rpc_server *rpc, struct http_request *req);

/* A Connect error's JSON: {"code": "not_found", "message": ...} for gRPC status code, malloc'd
 * into *body; its length (0 and NULL when memory ran out). */
size_t connect_error_body(int code, const char *message, char **body);

#endif
