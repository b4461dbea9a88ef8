/*
 * memory.c - a call's memory (see internal.h): the arena that rpc_alloc carves and the call's end
 * wipes, and messages packed and unpacked with allocators that wipe, since requests and responses
 * may hold secret values.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "wire.h"

/* Chunks hold this much (a resolve of 50 secrets fits in one or two); larger requests get a
 * chunk of their own. The first chunk is small: a call that waits holds little. */
#define ARENA_CHUNK 8192
#define ARENA_FIRST 1024

void *rpc_alloc(struct rpc_ctx *ctx, size_t n)
{
	const size_t align = sizeof(max_align_t);
	size_t need = n ? (n + align - 1) / align * align : align;
	struct arena_block *b = ctx->arena;
	if (b == NULL || b->size - b->used < need) {
		size_t chunk = b == NULL ? ARENA_FIRST : ARENA_CHUNK;
		size_t size = need > chunk / 4 ? need : chunk;
		struct arena_block *fresh = malloc(sizeof(*fresh) + size);
		if (fresh == NULL) {
			ctx->oom = true;
			return NULL;
		}
		fresh->size = size;
		fresh->used = 0;
		if (b != NULL && size != chunk) {
			/* A large allocation: keep carving from the current chunk afterwards. */
			fresh->next = b->next;
			b->next = fresh;
			fresh->used = need;
			return memset(fresh->payload, 0, need);
		}
		fresh->next = b;
		ctx->arena = b = fresh;
	}
	void *p = (char *)b->payload + b->used;
	b->used += need;
	return memset(p, 0, need);
}

char *rpc_strdup(struct rpc_ctx *ctx, const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = rpc_alloc(ctx, n);
	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

void rpc__arena_free(struct rpc_ctx *ctx)
{
	while (ctx->arena) {
		struct arena_block *b = ctx->arena;
		ctx->arena = b->next;
		explicit_bzero(b->payload, b->used);
		free(b);
	}
}

/* protobuf-c allocator whose frees wipe: unpacked requests may hold plaintext values. */
static void *wiping_alloc(void *data, size_t size)
{
	(void)data;
	size_t *p = malloc(sizeof(max_align_t) + size);
	if (p == NULL)
		return NULL;
	*p = size;
	return (char *)p + sizeof(max_align_t);
}

static void wiping_free(void *data, void *ptr)
{
	(void)data;
	if (ptr == NULL)
		return;
	size_t *p = (size_t *)((char *)ptr - sizeof(max_align_t));
	explicit_bzero(ptr, *p);
	free(p);
}

static ProtobufCAllocator wiping_allocator = {wiping_alloc, wiping_free, NULL};

void rpc_message_free(ProtobufCMessage *msg)
{
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, &wiping_allocator);
}

bool rpc__pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(msg);
	*out = malloc(*len ? *len : 1);
	if (*out == NULL)
		return false;
	protobuf_c_message_pack(msg, *out);
	return true;
}

void rpc__packed_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

ProtobufCMessage *rpc__unpack_trusted(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                                      size_t len)
{
	return protobuf_c_message_unpack(desc, &wiping_allocator, len, buf);
}

ProtobufCMessage *rpc__unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                              size_t len, const char **bad)
{
	*bad = wire_bad_string(desc, buf, len);
	if (*bad != NULL)
		return NULL;
	return protobuf_c_message_unpack(desc, &wiping_allocator, len, buf);
}
