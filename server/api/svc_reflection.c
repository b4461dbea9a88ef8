/*
 * svc_reflection.c - grpc.reflection.v1alpha.ServerReflection, so grpcurl and other generic
 * tools can list and call the services without the .proto files. Answers from the serialized
 * descriptors that protoc-gen-coffer embeds (coffer_registry.h).
 */
#include "call.h"

#include <string.h>

#include "coffer_registry.h"
#include "run.h"

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest refl_req;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse refl_resp;

static const coffer_file_desc *file_named(const char *name)
{
	for (size_t i = 0; i < coffer__n_files; i++)
		if (strcmp(coffer__files[i]->name, name) == 0)
			return coffer__files[i];
	return NULL;
}

static const coffer_file_desc *file_with_symbol(const char *sym)
{
	for (size_t i = 0; i < coffer__n_files; i++)
		for (size_t k = 0; k < coffer__files[i]->n_symbols; k++)
			if (strcmp(coffer__files[i]->symbols[k], sym) == 0)
				return coffer__files[i];
	return NULL;
}

/* Adds f and, after it, everything it imports (once each) to out. */
static void add_with_deps(const coffer_file_desc *f, const coffer_file_desc **out, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		if (out[i] == f)
			return;
	out[(*n)++] = f;
	for (size_t d = 0; d < f->n_deps; d++) {
		const coffer_file_desc *dep = file_named(f->deps[d]);
		if (dep)
			add_with_deps(dep, out, n);
	}
}

/* Messages a client may leave untaken before the stream is cut. */
#define REFLECTION_QUEUE 16

static int answer(struct rpc_stream *st, refl_req *req)
{
	refl_resp resp = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__INIT;
	Grpc__Reflection__V1alpha__FileDescriptorResponse fdr =
	        GRPC__REFLECTION__V1ALPHA__FILE_DESCRIPTOR_RESPONSE__INIT;
	Grpc__Reflection__V1alpha__ListServiceResponse lsr =
	        GRPC__REFLECTION__V1ALPHA__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1alpha__ErrorResponse err =
	        GRPC__REFLECTION__V1ALPHA__ERROR_RESPONSE__INIT;
	const coffer_file_desc *files[64];
	ProtobufCBinaryData blobs[64];
	Grpc__Reflection__V1alpha__ServiceResponse svcs[64];
	Grpc__Reflection__V1alpha__ServiceResponse *svc_ptrs[64];
	size_t n = 0;
	resp.valid_host = req->host;
	resp.original_request = req;

	const coffer_file_desc *root = NULL;
	switch (req->message_request_case) {
	case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
		for (size_t f = 0; f < coffer__n_files; f++)
			for (size_t s = 0; s < coffer__files[f]->n_services && n < 64; s++, n++) {
				grpc__reflection__v1alpha__service_response__init(&svcs[n]);
				svcs[n].name = (char *)coffer__files[f]->services[s]->name;
				svc_ptrs[n] = &svcs[n];
			}
		lsr.n_service = n;
		lsr.service = svc_ptrs;
		resp.message_response_case =
		        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
		resp.list_services_response = &lsr;
		break;
	case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		root = file_named(req->file_by_filename);
		goto files;
	case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		root = file_with_symbol(req->file_containing_symbol);
	files:
		if (root == NULL) {
			err.error_code = RPC_NOT_FOUND;
			err.error_message = "not found";
			goto error;
		}
		add_with_deps(root, files, &n);
		for (size_t i = 0; i < n; i++) {
			blobs[i].data = (uint8_t *)files[i]->descriptor;
			blobs[i].len = files[i]->descriptor_len;
		}
		fdr.n_file_descriptor_proto = n;
		fdr.file_descriptor_proto = blobs;
		resp.message_response_case =
		        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
		resp.file_descriptor_response = &fdr;
		break;
	default:
		err.error_code = RPC_UNIMPLEMENTED;
		err.error_message = "not supported: this server declares no extensions";
	error:
		resp.message_response_case =
		        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
		resp.error_response = &err;
		break;
	}
	return rpc_stream_send(st, &resp.base, REFLECTION_QUEUE);
}

/* Each request gets its answer; the client's close ends the stream. */
static void on_request(struct rpc_stream *st, ProtobufCMessage *msg, void *arg)
{
	(void)arg;
	if (msg == NULL) {
		rpc_stream_finish(st, RPC_OK);
		return;
	}
	int rc = answer(st, (refl_req *)msg);
	rpc_message_free(msg);
	if (rc < 0)
		rpc_stream_finish(st, RPC_RESOURCE_EXHAUSTED);
}

static void on_done(struct rpc_stream *st, int code, void *arg)
{
	(void)st;
	api_stream_done(arg, code);
}

static int server_reflection_info(struct call *c, struct rpc_stream *st)
{
	static const struct rpc_stream_handlers handlers = {on_request, on_done};
	rpc_stream_start(st, &handlers, c, true);
	return RPC_PENDING;
}

const Grpc__Reflection__V1alpha__ServerReflection__Handlers reflection_handlers = {
        .server_reflection_info = server_reflection_info,
};
