/*
 * svc_http.h - the read-only HTTP/JSON endpoint (GET an environment's secrets), answered by
 * ResolveSecrets through the rpc runtime: see svc_http.c and docs/api.md, "HTTP".
 */
#ifndef COFFER_SVC_HTTP_H
#define COFFER_SVC_HTTP_H

struct rpc_server;
struct svc_http;
struct http_request;

/* The endpoint's state over a running gRPC server. 0, or -1 when out of memory. */
int svc_http_new(struct rpc_server *rpc, struct svc_http **out);
void svc_http_free(struct svc_http *h);

/* The HTTP status of a gRPC code (the usual mapping: docs/api.md, "HTTP"). */
int svc_http_status(int code);

/* The listener's handler (http_handler_fn): app is a struct svc_http. */
void svc_http_handle(void *app, struct http_request *req);

#endif
