/* wire.c - string checks on the protobuf wire format (see wire.h). */
#include "wire.h"

#include <string.h>

#include "utf8.h"

/* Deeper nesting than this is not a Coffer request. */
#define MAX_DEPTH 16

/* Reads a varint at *pos; false when it runs off the end or is longer than 10 bytes. */
static bool varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
	*out = 0;
	for (int shift = 0; shift < 70 && *pos < len; shift += 7) {
		uint8_t b = buf[(*pos)++];
		*out |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

static const char *walk(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        int depth)
{
	size_t pos = 0;
	while (pos < len) {
		uint64_t key, n;
		if (!varint(buf, len, &pos, &key))
			return NULL;
		switch (key & 7) {
		case 0: /* varint */
			if (!varint(buf, len, &pos, &n))
				return NULL;
			break;
		case 1: /* 64-bit */
			pos += 8;
			break;
		case 5: /* 32-bit */
			pos += 4;
			break;
		case 2: { /* length-delimited */
			if (!varint(buf, len, &pos, &n) || n > len - pos)
				return NULL;
			const ProtobufCFieldDescriptor *f =
			        protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
			const char *field = (const char *)buf + pos;
			if (f && f->type == PROTOBUF_C_TYPE_STRING &&
			    (memchr(field, '\0', n) != NULL || !utf8_valid(field, n)))
				return f->name;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < MAX_DEPTH) {
				const char *bad = walk(f->descriptor, buf + pos, n, depth + 1);
				if (bad)
					return bad;
			}
			pos += n;
			break;
		}
		default: /* groups and invalid wire types: the unpacker refuses them */
			return NULL;
		}
	}
	return NULL;
}

const char *wire_bad_string(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len)
{
	return walk(desc, buf, len, 0);
}
