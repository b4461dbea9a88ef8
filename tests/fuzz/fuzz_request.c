/*
 * fuzz_request.c - every unary method's request decoding and validation, as cofferd runs them:
 * the wire check (UTF-8, no NUL), protobuf-c's unpacking, then the api's entry with its access
 * decision and the handler's checks. There is no database: a request that passes every check
 * ends UNAVAILABLE where it would have opened a session. The first byte picks the method.
 * Checked: nothing crashes, leaks or reads out of bounds (ASan, UBSan); an answer other than OK
 * carries a message; an OK answer packs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "log.h"
#include "rpc.h"
#include "run.h"
#include "wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct target {
	const coffer_method_desc *m; /* a unary method */
	const void *handlers;        /* its service's table */
};

static struct target targets[128];
static size_t n_targets;
static struct api *api;

static int discard(void *arg, const struct audit_row *rows, size_t n, struct cof_err *e)
{
	(void)arg;
	(void)rows;
	(void)n;
	(void)e;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_ERROR);
	for (size_t b = 0; b < api_n_bindings; b++)
		for (size_t k = 0; k < api_bindings[b].service->n_methods; k++) {
			const coffer_method_desc *m = &api_bindings[b].service->methods[k];
			if (m->invoke && n_targets < sizeof(targets) / sizeof(targets[0]))
				targets[n_targets++] = (struct target){m, api_bindings[b].handlers};
		}
	struct audit *audit = NULL;
	struct cof_err e = {0};
	struct api_config cfg = {.insecure_no_auth = true, .statement_timeout_ms = 1000};
	if (audit_start(&(struct audit_opts){.sink = discard}, &audit, &e) != 0 ||
	    api_new(&cfg, NULL, audit, NULL, &api, &e) != 0) {
		fprintf(stderr, "fuzz_request: %s\n", e.msg);
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const struct target *t = &targets[data[0] % n_targets];
	const uint8_t *buf = data + 1;
	size_t len = size - 1;
	if (wire_bad_string(t->m->input, buf, len) != NULL)
		return 0; /* cofferd answers INVALID_ARGUMENT here */
	ProtobufCMessage *req = protobuf_c_message_unpack(t->m->input, NULL, len, buf);
	if (req == NULL)
		return 0; /* and here */
	/* What protobuf-c made of it holds no string cut short. */
	struct rpc_ctx *ctx = rpc_ctx_detached();
	ProtobufCMessage *resp = rpc_alloc(ctx, t->m->output->sizeof_message);
	if (resp == NULL)
		abort();
	protobuf_c_message_init(t->m->output, resp);
	int code = api_unary(api, ctx, t->m, t->handlers, req, resp);
	if (code == RPC_PENDING) /* the audit writer answers */
		code = rpc_ctx_detached_wait(ctx);
	if (code != RPC_OK && *rpc_ctx_message(ctx) == '\0') {
		fprintf(stderr, "%s answered %s without a message\n", t->m->path,
		        rpc_code_name(code));
		abort();
	}
	if (code == RPC_OK) {
		size_t n = protobuf_c_message_get_packed_size(resp);
		uint8_t *out = malloc(n + 1);
		if (out == NULL || protobuf_c_message_pack(resp, out) != n)
			abort();
		free(out);
	}
	rpc_ctx_detached_free(ctx);
	protobuf_c_message_free_unpacked(req, NULL);
	return 0;
}
