/*
 * http_json.h - the HTTP listener's application: the Connect protocol for every RPC (connect.c)
 * and the read-only REST paths (GET an environment's secrets, answered by ResolveSecrets), all
 * through the rpc runtime: see http_json.c and docs/api.md, "HTTP" and "Connect".
 */
#ifndef COFFER_HTTP_JSON_H
#define COFFER_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>

struct rpc_server;
struct http_json;
struct http_request;

/* The endpoint's state over a running gRPC server. 0, or -1 when out of memory. */
int http_json_new(struct rpc_server *rpc, bool console, struct http_json **out);
void http_json_free(struct http_json *h);

/* The listener's handler (http_handler_fn): app is a struct http_json. Connect's paths
 * ("/coffer.v1.Secrets/ResolveSecrets") go to connect.c, the rest are the REST reads. */
void http_json_handle(void *app, struct http_request *req);
/* Whether a POST to path is served (http_opts.takes_body): Connect's paths only. */
bool http_json_takes_body(void *app, const char *path);
/* The listener's error bodies (http_error_fn): Connect's shape for Connect's paths, the REST
 * shape ({"code": "NOT_FOUND", ...}) for the others. */
size_t http_json_error(void *app, const char *path, int code, const char *message, char **body,
                       const char **type);

#endif
