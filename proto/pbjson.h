/*
 * pbjson.h - the proto3 JSON mapping for every protobuf-c message, through its descriptor: one
 * codec for the Connect protocol (server/api/connect.c) whatever the message, with the
 * well-known types Coffer's protos use (google.protobuf.Timestamp as RFC 3339, Empty as {}).
 *
 * Decoding reads JSON with jansson (Debian's libjansson) and writes the message's binary form,
 * which the runtime then unpacks as it unpacks a gRPC request: one unpacker, with its checks,
 * for both. Field names are accepted as lowerCamelCase (the JSON name) or as in the proto;
 * enums by name or number; 64-bit integers as strings or numbers; bytes as base64 (standard or
 * URL-safe, padded or not); null as absent. Unknown fields, duplicate keys, a type that does not
 * fit, a number out of its field's range, a oneof set twice, nesting deeper than
 * PBJSON_MAX_DEPTH and malformed JSON are refused with a message that names the field, never a
 * value. Map fields and google.protobuf.Any/Struct/Value are not handled: Coffer's protos have
 * none (a field of such a type is refused, not misread).
 *
 * Encoding writes lowerCamelCase names, enums by name, 64-bit integers as strings, Timestamps
 * in RFC 3339 (UTC, "Z"), and omits fields that hold their default value (a oneof member that
 * is set is always written). Output goes to a coffer_wbuf, which wipes what it held whenever it
 * grows: a resolve's answer holds values.
 */
#ifndef COFFER_PBJSON_H
#define COFFER_PBJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "coffer_shared.h"

/* Messages nested deeper than this are refused (Coffer's go three deep). */
#define PBJSON_MAX_DEPTH 16

/* Makes jansson wipe every buffer it frees (a request's JSON holds values). Process-wide: call
 * once, before any thread uses jansson. */
void pbjson_init(void);

/* Decodes the JSON text json[0..len) as a message of desc and appends the message's binary form
 * to out. 0, or -1 with err (errlen bytes) saying what is wrong, or -2 when memory ran out. */
int pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                  struct coffer_wbuf *out, char *err, size_t errlen);

/* Base64 (standard or URL-safe, padded or not) s[0..len) into out[0..*n) (room: len bytes).
 * False when it is not base64. */
bool pbjson_base64_decode(const char *s, size_t len, uint8_t *out, size_t *n);

/* Appends msg as JSON to out. 0, or -1 when memory ran out. */
int pbjson_encode(const ProtobufCMessage *msg, struct coffer_wbuf *out);

#endif
