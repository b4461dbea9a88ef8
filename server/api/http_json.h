/*
 * http_json.h - the read-only HTTP/JSON endpoint (GET an environment's secrets), answered by
 * ResolveSecrets through the rpc runtime: see http_json.c and docs/api.md, "HTTP".
 */
#ifndef COFFER_HTTP_JSON_H
#define COFFER_HTTP_JSON_H

struct rpc_server;
struct http_json;
struct http_request;

/* The endpoint's state over a running gRPC server. 0, or -1 when out of memory. */
int http_json_new(struct rpc_server *rpc, struct http_json **out);
void http_json_free(struct http_json *h);

/* The listener's handler (http_handler_fn): app is a struct http_json. */
void http_json_handle(void *app, struct http_request *req);

#endif
