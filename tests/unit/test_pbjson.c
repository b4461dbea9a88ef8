/*
 * test_pbjson.c - the proto3 JSON mapping (proto/pbjson.c) over Coffer's own messages: JSON in,
 * the binary form out, unpacked by protobuf-c and compared field by field; messages out as JSON;
 * and every refusal the Connect API relies on (unknown fields, wrong types, ranges, oneofs set
 * twice, depth, malformed JSON) with a message that names the field and never the value.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "coffer/v1/access.pb-c.h"
#include "coffer/v1/secrets.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "pbjson.h"

/* json decoded as desc and unpacked; NULL (with err) when refused. */
static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *desc, const char *json, char *err,
                                size_t errlen)
{
	struct coffer_wbuf b = {0};
	err[0] = '\0';
	int rc = pbjson_decode(desc, json, strlen(json), &b, err, errlen);
	ProtobufCMessage *m = NULL;
	if (rc == 0) {
		m = protobuf_c_message_unpack(desc, NULL, b.len, (const uint8_t *)(b.p ? b.p : ""));
		ck_assert_ptr_nonnull(m);
	}
	coffer_wbuf_free(&b);
	return m;
}

/* msg as JSON, malloc'd. */
static char *encode(const ProtobufCMessage *msg)
{
	struct coffer_wbuf b = {0};
	ck_assert_int_eq(pbjson_encode(msg, &b), 0);
	char *s = strdup(b.p);
	coffer_wbuf_free(&b);
	return s;
}

START_TEST(decode_names_enums_int64_repeated)
{
	char err[256];
	/* JSON names and proto names both; enums by name and number; int64 as string and number */
	Coffer__V1__ResolveSecretsRequest *r = (Coffer__V1__ResolveSecretsRequest *)decode(
	        &coffer__v1__resolve_secrets_request__descriptor,
	        "{\"project\":\"p\",\"environment\":\"staging\",\"version\":\"VERSION_LIVE\","
	        "\"names\":[\"A\",\"B\"],\"minRevision\":\"9007199254740993\",\"at_revision\":7}",
	        err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_str_eq(r->project, "p");
	ck_assert_str_eq(r->environment, "staging");
	ck_assert_int_eq(r->version, COFFER__V1__VERSION__VERSION_LIVE);
	ck_assert_uint_eq(r->n_names, 2);
	ck_assert_str_eq(r->names[1], "B");
	ck_assert_int_eq(r->min_revision, 9007199254740993LL);
	ck_assert_int_eq(r->at_revision, 7);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	r = (Coffer__V1__ResolveSecretsRequest *)decode(
	        &coffer__v1__resolve_secrets_request__descriptor,
	        "{\"version\":2,\"knownRevision\":null}", err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_int_eq(r->version, 2);
	ck_assert_int_eq(r->known_revision, 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}
END_TEST

START_TEST(decode_oneof_presence_and_nested)
{
	char err[256];
	/* an empty value in a one-member oneof is set (presence), an absent one is not */
	Coffer__V1__UpdateSecretRequest *u = (Coffer__V1__UpdateSecretRequest *)decode(
	        &coffer__v1__update_secret_request__descriptor,
	        "{\"project\":\"p\",\"name\":\"N\",\"value\":\"\",\"expectedRevision\":\"-1\"}",
	        err, sizeof(err));
	ck_assert_msg(u != NULL, "%s", err);
	ck_assert_int_eq(u->value_update_case,
	                 COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE);
	ck_assert_str_eq(u->value, "");
	ck_assert_int_eq(u->description_update_case,
	                 COFFER__V1__UPDATE_SECRET_REQUEST__DESCRIPTION_UPDATE__NOT_SET);
	ck_assert_int_eq(u->expected_revision, -1);
	protobuf_c_message_free_unpacked(&u->base, NULL);

	/* messages in a repeated field, each a oneof */
	Coffer__V1__ApplyChangesRequest *a = (Coffer__V1__ApplyChangesRequest *)decode(
	        &coffer__v1__apply_changes_request__descriptor,
	        "{\"project\":\"p\",\"dryRun\":true,\"changes\":[{\"createSecret\":{\"name\":\"A\","
	        "\"value\":\"v\",\"visibility\":\"VISIBILITY_RESTRICTED\"}},{\"delete_secret\":"
	        "{\"name\":\"B\"}}]}",
	        err, sizeof(err));
	ck_assert_msg(a != NULL, "%s", err);
	ck_assert(a->dry_run);
	ck_assert_uint_eq(a->n_changes, 2);
	ck_assert_int_eq(a->changes[0]->change_case, COFFER__V1__CHANGE__CHANGE_CREATE_SECRET);
	ck_assert_str_eq(a->changes[0]->create_secret->name, "A");
	ck_assert_int_eq(a->changes[0]->create_secret->visibility,
	                 COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED);
	ck_assert_int_eq(a->changes[1]->change_case, COFFER__V1__CHANGE__CHANGE_DELETE_SECRET);
	protobuf_c_message_free_unpacked(&a->base, NULL);
}
END_TEST

START_TEST(decode_timestamp)
{
	char err[256];
	Coffer__V1__ListAuditEventsRequest *l = (Coffer__V1__ListAuditEventsRequest *)decode(
	        &coffer__v1__list_audit_events_request__descriptor,
	        "{\"since\":\"2026-12-03T10:00:01.5+01:00\"}", err, sizeof(err));
	ck_assert_msg(l != NULL, "%s", err);
	ck_assert_ptr_nonnull(l->since);
	ck_assert_int_eq(l->since->seconds, 1796292001LL - 3600);
	ck_assert_int_eq(l->since->nanos, 500000000);
	protobuf_c_message_free_unpacked(&l->base, NULL);
	static const char *bad[] = {"\"2026-02-30T00:00:00Z\"", "\"2026-12-03T10:00:00\"",
	                            "\"2026-12-03 10:00:00Z\"", "12", "\"10000-01-01T00:00:00Z\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char json[96];
		snprintf(json, sizeof(json), "{\"since\":%s}", bad[i]);
		ck_assert_ptr_null(decode(&coffer__v1__list_audit_events_request__descriptor, json,
		                          err, sizeof(err)));
		ck_assert_msg(strstr(err, "RFC 3339") != NULL, "%s: %s", bad[i], err);
	}
}
END_TEST

START_TEST(decode_refusals)
{
	static const struct {
		const char *
		        json; /* a GetSecretRequest, ResolveSecretsRequest or UpdateSecretRequest */
		const ProtobufCMessageDescriptor *desc;
		const char *says; /* in the message */
	} cases[] = {
	        {"{\"nam\":\"x\"}", &coffer__v1__get_secret_request__descriptor,
	         "unknown field \"nam\""},
	        {"{\"name\":\"a\",\"name\":\"b\"}", &coffer__v1__get_secret_request__descriptor,
	         "does not parse"},
	        {"{\"name\":\"a\",\"name\":\"b\"", &coffer__v1__get_secret_request__descriptor,
	         "does not parse"},
	        {"[]", &coffer__v1__get_secret_request__descriptor, "JSON object"},
	        {"{\"name\":5}", &coffer__v1__get_secret_request__descriptor, "\"name\""},
	        {"{\"version\":\"VERSION_NOPE\"}", &coffer__v1__resolve_secrets_request__descriptor,
	         "coffer.v1.Version"},
	        {"{\"atRevision\":\"12abc\"}", &coffer__v1__resolve_secrets_request__descriptor,
	         "\"at_revision\""},
	        {"{\"atRevision\":1.5}", &coffer__v1__resolve_secrets_request__descriptor,
	         "\"at_revision\""},
	        {"{\"atRevision\":\"99999999999999999999\"}",
	         &coffer__v1__resolve_secrets_request__descriptor, "\"at_revision\""},
	        {"{\"names\":\"A\"}", &coffer__v1__resolve_secrets_request__descriptor, "array"},
	        {"{\"names\":[null]}", &coffer__v1__resolve_secrets_request__descriptor, "null"},
	        {"{\"project\":\"p\",\"project\":\"q\"}",
	         &coffer__v1__resolve_secrets_request__descriptor, "does not parse"},
	        {"{\"minRevision\":1,\"min_revision\":2}",
	         &coffer__v1__resolve_secrets_request__descriptor, "twice"},
	        {"{\"page_size\":3000000000}", &coffer__v1__list_secrets_request__descriptor,
	         "\"page_size\""},
	        {"{\"name\":\"\\u0000\"}", &coffer__v1__get_secret_request__descriptor,
	         "does not parse"},
	        {"{\"changes\":[{\"createSecret\":{},\"deleteSecret\":{}}]}",
	         &coffer__v1__apply_changes_request__descriptor, "oneof"},
	        {"{\"changes\":[{\"createSecret\":{\"visiblity\":\"VISIBILITY_RESTRICTED\"}}]}",
	         &coffer__v1__apply_changes_request__descriptor, "unknown field \"visiblity\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256];
		ck_assert_msg(decode(cases[i].desc, cases[i].json, err, sizeof(err)) == NULL,
		              "accepted %s", cases[i].json);
		ck_assert_msg(strstr(err, cases[i].says) != NULL, "%s: %s", cases[i].json, err);
	}
	/* a value never shows in a message */
	char err[256];
	ck_assert_ptr_null(decode(&coffer__v1__update_secret_request__descriptor,
	                          "{\"value\":12345678}", err, sizeof(err)));
	ck_assert_ptr_null(strstr(err, "12345678"));
}
END_TEST

START_TEST(decode_depth_bounded)
{
	/* JSON nested 5,000 deep is refused (jansson stops at its depth), not recursed into */
	size_t depth = 5000;
	char *json = malloc(depth * 6 + depth + 2);
	size_t n = 0;
	for (size_t i = 0; i < depth; i++) {
		memcpy(json + n, "{\"a\":", 5);
		n += 5;
	}
	json[n++] = '1';
	memset(json + n, '}', depth);
	json[n + depth] = '\0';
	char err[256];
	ck_assert_ptr_null(
	        decode(&coffer__v1__apply_changes_request__descriptor, json, err, sizeof(err)));
	ck_assert_msg(strstr(err, "does not parse") != NULL, "%s", err);
	free(json);
}
END_TEST

START_TEST(encode_mapping)
{
	Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	t.seconds = 1796292001; /* 2026-12-03T10:00:01Z */
	t.nanos = 20000000;
	Coffer__V1__Secret s = COFFER__V1__SECRET__INIT;
	s.project = "p";
	s.name = "A\"B";
	s.visibility = COFFER__V1__VISIBILITY__VISIBILITY_MASKED;
	s.revision = 9007199254740993LL;
	s.create_time = &t;
	char *j = encode(&s.base);
	ck_assert_str_eq(j, "{\"project\":\"p\",\"name\":\"A\\\"B\",\"visibility\":"
	                    "\"VISIBILITY_MASKED\",\"revision\":\"9007199254740993\","
	                    "\"createTime\":\"2026-12-03T10:00:01.020Z\"}");
	free(j);
	/* defaults are left out; a oneof member that is set is written even when empty */
	Coffer__V1__UpdateSecretRequest u = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	u.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
	u.value = "";
	j = encode(&u.base);
	ck_assert_str_eq(j, "{\"value\":\"\"}");
	free(j);
	/* repeated messages and strings */
	Coffer__V1__ResolvedSecret a = COFFER__V1__RESOLVED_SECRET__INIT, *list[] = {&a, &a};
	a.name = "K";
	a.value = "line\nbreak";
	char *missing[] = {"X"};
	Coffer__V1__ResolveSecretsResponse r = COFFER__V1__RESOLVE_SECRETS_RESPONSE__INIT;
	r.revision = 3;
	r.n_secrets = 2;
	r.secrets = list;
	r.n_missing = 1;
	r.missing = missing;
	j = encode(&r.base);
	ck_assert_str_eq(j, "{\"revision\":\"3\",\"secrets\":[{\"name\":\"K\",\"value\":"
	                    "\"line\\nbreak\"},{\"name\":\"K\",\"value\":\"line\\nbreak\"}],"
	                    "\"missing\":[\"X\"]}");
	free(j);
}
END_TEST

START_TEST(round_trip)
{
	/* what the encoder writes, the decoder reads back to the same message */
	Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	t.seconds = -62135596800LL; /* 0001-01-01 */
	t.nanos = 123456789;
	Coffer__V1__ListAuditEventsRequest l = COFFER__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
	l.project = "p";
	l.since = &t;
	l.page_size = -5;
	char *j = encode(&l.base);
	ck_assert_str_eq(j, "{\"project\":\"p\",\"since\":\"0001-01-01T00:00:00.123456789Z\","
	                    "\"pageSize\":-5}");
	char err[256];
	Coffer__V1__ListAuditEventsRequest *back = (Coffer__V1__ListAuditEventsRequest *)decode(
	        &coffer__v1__list_audit_events_request__descriptor, j, err, sizeof(err));
	ck_assert_msg(back != NULL, "%s", err);
	ck_assert_int_eq(back->since->seconds, t.seconds);
	ck_assert_int_eq(back->since->nanos, t.nanos);
	ck_assert_int_eq(back->page_size, -5);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	free(j);
}
END_TEST

TCase *tcase_pbjson(void)
{
	pbjson_init();
	TCase *tc = tcase_create("pbjson");
	test_add(tc, decode_names_enums_int64_repeated);
	test_add(tc, decode_oneof_presence_and_nested);
	test_add(tc, decode_timestamp);
	test_add(tc, decode_refusals);
	test_add(tc, decode_depth_bounded);
	test_add(tc, encode_mapping);
	test_add(tc, round_trip);
	return tc;
}
