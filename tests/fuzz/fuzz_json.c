/*
 * fuzz_json.c - the Connect JSON decoder (proto/pbjson.c): any bytes, as any request message of
 * the API (the first byte picks which), decode or are refused with a message, never crash or
 * leak; what decodes is a message protobuf-c unpacks, and that message encodes to JSON that
 * decodes again to the same binary form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/v1/access.pb-c.h"
#include "coffer/v1/environments.pb-c.h"
#include "coffer/v1/projects.pb-c.h"
#include "coffer/v1/secrets.pb-c.h"
#include "pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const messages[] = {
        &coffer__v1__create_secret_request__descriptor,
        &coffer__v1__update_secret_request__descriptor,
        &coffer__v1__resolve_secrets_request__descriptor,
        &coffer__v1__apply_changes_request__descriptor,
        &coffer__v1__set_override_request__descriptor,
        &coffer__v1__merge_environment_request__descriptor,
        &coffer__v1__create_token_request__descriptor,
        &coffer__v1__list_audit_events_request__descriptor,
        &coffer__v1__create_project_request__descriptor,
        &coffer__v1__secret__descriptor,
        &coffer__v1__resolve_secrets_response__descriptor,
        &coffer__v1__token__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		pbjson_init();
		ready = 1;
	}
	if (size == 0)
		return 0;
	const ProtobufCMessageDescriptor *desc =
	        messages[data[0] % (sizeof(messages) / sizeof(messages[0]))];
	struct coffer_wbuf wire = {0};
	char err[256];
	int rc = pbjson_decode(desc, (const char *)data + 1, size - 1, &wire, err, sizeof(err));
	if (rc == -1 && err[0] == '\0')
		abort(); /* a refusal always says why */
	if (rc != 0) {
		coffer_wbuf_free(&wire);
		return 0;
	}
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, wire.len,
	                                                (const uint8_t *)(wire.p ? wire.p : ""));
	if (m == NULL)
		abort(); /* what the decoder writes, protobuf-c reads */
	struct coffer_wbuf json = {0}, again = {0};
	if (pbjson_encode(m, &json) != 0 ||
	    pbjson_decode(desc, json.p, json.len, &again, err, sizeof(err)) != 0)
		abort(); /* what the encoder writes, the decoder reads */
	ProtobufCMessage *m2 = protobuf_c_message_unpack(desc, NULL, again.len,
	                                                 (const uint8_t *)(again.p ? again.p : ""));
	if (m2 == NULL)
		abort();
	size_t n1 = protobuf_c_message_get_packed_size(m),
	       n2 = protobuf_c_message_get_packed_size(m2);
	uint8_t *b1 = malloc(n1 + 1), *b2 = malloc(n2 + 1);
	if (b1 && b2) {
		protobuf_c_message_pack(m, b1);
		protobuf_c_message_pack(m2, b2);
		if (n1 != n2 || memcmp(b1, b2, n1) != 0)
			abort(); /* a round trip keeps the message */
	}
	free(b1);
	free(b2);
	protobuf_c_message_free_unpacked(m, NULL);
	protobuf_c_message_free_unpacked(m2, NULL);
	coffer_wbuf_free(&wire);
	coffer_wbuf_free(&json);
	coffer_wbuf_free(&again);
	return 0;
}
