/*
 * coffer_rpc_meta.h - the types that generated code and the two gRPC runtimes share.
 *
 * protoc-gen-coffer emits, for each service, a coffer_service_desc (its method table), a typed
 * handler table for the server and typed blocking stubs for the client; and for each .proto file a
 * coffer_file_desc carrying its serialized FileDescriptorProto for server reflection. This header
 * holds only data types: it includes no gRPC header, so generated code stays transport-free.
 * Handlers receive the server's per-request owner, `struct call` (server/api/call.h); the
 * runtime (server/rpc) passes it through without looking inside.
 */
#ifndef COFFER_RPC_META_H
#define COFFER_RPC_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct call;
struct rpc_stream;

/* Calls a unary handler from a typed handler table; returns a gRPC status code (0 = OK). */
typedef int (*coffer_rpc_invoke_fn)(const void *handlers, struct call *call,
                                    const ProtobufCMessage *req, ProtobufCMessage *resp);
/* Calls a streaming handler from a typed handler table; returns a gRPC status code. */
typedef int (*coffer_rpc_stream_fn)(const void *handlers, struct call *call,
                                    struct rpc_stream *stream);

typedef struct coffer_method_desc {
	const char *name;                         /* "CreateProject" */
	const char *path;                         /* "/coffer.v1.Projects/CreateProject" */
	const ProtobufCMessageDescriptor *input;  /* request message type */
	const ProtobufCMessageDescriptor *output; /* response message type */
	bool client_streaming;                    /* request is a stream */
	bool server_streaming;                    /* response is a stream */
	bool idempotent;      /* safe to repeat (the proto's idempotency_level): reads, resolves */
	bool no_side_effects; /* idempotency_level NO_SIDE_EFFECTS: Connect serves it by GET too */
	coffer_rpc_invoke_fn invoke;        /* unary dispatch; NULL when streaming */
	coffer_rpc_stream_fn invoke_stream; /* streaming dispatch; NULL when unary */
} coffer_method_desc;

typedef struct coffer_service_desc {
	const char *name;                  /* fully qualified: "coffer.v1.Projects" */
	size_t n_methods;                  /* entries in methods */
	const coffer_method_desc *methods; /* in declaration order */
} coffer_service_desc;

typedef struct coffer_file_desc {
	const char *name;                           /* "coffer/v1/projects.proto" */
	const uint8_t *descriptor;                  /* serialized FileDescriptorProto */
	size_t descriptor_len;                      /* bytes in descriptor */
	size_t n_deps;                              /* entries in deps */
	const char *const *deps;                    /* imported file names */
	size_t n_symbols;                           /* entries in symbols */
	const char *const *symbols;                 /* every fully qualified name it declares */
	size_t n_services;                          /* entries in services */
	const coffer_service_desc *const *services; /* its services */
} coffer_file_desc;

#endif
