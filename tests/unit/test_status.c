/*
 * test_status.c - the status table (proto/coffer_status.def) as its users see it: every internal
 * code's gRPC code (server/api/status.c), every gRPC code's name, its HTTP status as docs/api.md
 * and Connect's protocol give it, and Connect's name, both ways.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "errors.h"
#include "rpc.h"
#include "coffer_shared.h"
#include "status.h"

START_TEST(status_mapping)
{
	static const int expect[][2] = {
	        {COF_OK, RPC_OK},
	        {COF_EINVAL, RPC_INVALID_ARGUMENT},
	        {COF_ENOTFOUND, RPC_NOT_FOUND},
	        {COF_EEXIST, RPC_ALREADY_EXISTS},
	        {COF_ECONFLICT, RPC_ABORTED},
	        {COF_EPRECOND, RPC_FAILED_PRECONDITION},
	        {COF_ERANGE, RPC_OUT_OF_RANGE},
	        {COF_EUNAVAIL, RPC_UNAVAILABLE},
	        {COF_EINTERNAL, RPC_INTERNAL},
	        {COF_ETAMPER, RPC_INTERNAL},
	        {COF_EUNAUTH, RPC_UNAUTHENTICATED},
	        {COF_EPERM, RPC_PERMISSION_DENIED},
	        {COF_EEXHAUSTED, RPC_RESOURCE_EXHAUSTED},
	        {COF_ERETRY, RPC_ABORTED},
	        {COF_EDEADLINE, RPC_DEADLINE_EXCEEDED},
	        {COF_EUNKNOWN, RPC_UNKNOWN},
	        {-999, RPC_INTERNAL},
	};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		ck_assert_int_eq(status_from_code(expect[i][0]), expect[i][1]);
	ck_assert_str_eq(rpc_code_name(RPC_NOT_FOUND), "NOT_FOUND");
	ck_assert_str_eq(rpc_code_name(RPC_UNAUTHENTICATED), "UNAUTHENTICATED");
	ck_assert_str_eq(rpc_code_name(99), "UNKNOWN");
}
END_TEST

/* The HTTP status of every gRPC code, as docs/api.md ("HTTP") and Connect's protocol give it, and
 * Connect's name. */
START_TEST(http_status_mapping)
{
	static const struct {
		int code;
		int http;
		const char *connect;
	} expect[] = {
	        {RPC_OK, 200, ""},
	        {RPC_CANCELLED, 499, "canceled"},
	        {RPC_UNKNOWN, 500, "unknown"},
	        {RPC_INVALID_ARGUMENT, 400, "invalid_argument"},
	        {RPC_DEADLINE_EXCEEDED, 504, "deadline_exceeded"},
	        {RPC_NOT_FOUND, 404, "not_found"},
	        {RPC_ALREADY_EXISTS, 409, "already_exists"},
	        {RPC_PERMISSION_DENIED, 403, "permission_denied"},
	        {RPC_RESOURCE_EXHAUSTED, 429, "resource_exhausted"},
	        {RPC_FAILED_PRECONDITION, 400, "failed_precondition"},
	        {RPC_ABORTED, 409, "aborted"},
	        {RPC_OUT_OF_RANGE, 400, "out_of_range"},
	        {RPC_UNIMPLEMENTED, 501, "unimplemented"},
	        {RPC_INTERNAL, 500, "internal"},
	        {RPC_UNAVAILABLE, 503, "unavailable"},
	        {RPC_DATA_LOSS, 500, "data_loss"},
	        {RPC_UNAUTHENTICATED, 401, "unauthenticated"},
	};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		int c = expect[i].code;
		ck_assert_msg(coffer_status_http(c) == expect[i].http, "code %d: %d, want %d", c,
		              coffer_status_http(c), expect[i].http);
		ck_assert_str_eq(coffer_status_connect(c), expect[i].connect);
		ck_assert_int_eq(coffer_status_from_name(coffer_status_name(c)), c);
		if (c != RPC_OK)
			ck_assert_int_eq(coffer_status_from_name(expect[i].connect), c);
	}
	ck_assert_int_eq(coffer_status_http(17), 500);
	ck_assert_int_eq(coffer_status_http(-1), 500);
	ck_assert_str_eq(coffer_status_connect(99), "unknown");
	ck_assert_int_eq(coffer_status_from_name("NOPE"), -1);
	ck_assert_int_eq(coffer_status_from_name(NULL), -1);
}
END_TEST

TCase *tcase_status(void)
{
	TCase *tc = tcase_create("status");
	test_add(tc, status_mapping);
	test_add(tc, http_status_mapping);
	return tc;
}
