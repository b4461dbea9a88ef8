/*
 * wire.h - checks on a request's bytes before protobuf-c unpacks them.
 *
 * protobuf-c turns a string field into a NUL-terminated C string, so a string with an embedded
 * NUL would reach the handlers cut short. Every string field, at any depth, must be valid UTF-8
 * (proto3 requires it) and hold no NUL; this walks the wire format with the message's descriptor
 * to check that on the bytes themselves.
 */
#ifndef COFFER_WIRE_H
#define COFFER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* The name of the first string field of buf[0..len) (a desc message) that is not valid UTF-8 or
 * holds a NUL byte, or NULL when there is none. Bytes that do not parse are left to the unpacker.
 */
const char *wire_bad_string(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len);

#endif
