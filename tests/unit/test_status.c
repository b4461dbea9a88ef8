/*
 * test_status.c - the status table (server/api/status.c): every internal code's gRPC code, every
 * gRPC code's name and HTTP status.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "errors.h"
#include "rpc.h"
#include "status.h"
#include "svc_http.h"

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

/* The HTTP status of every gRPC code, as docs/api.md ("HTTP") lists it. */
START_TEST(http_status_mapping)
{
	static const int expect[][2] = {
	        {RPC_OK, 200},
	        {RPC_CANCELLED, 499},
	        {RPC_UNKNOWN, 500},
	        {RPC_INVALID_ARGUMENT, 400},
	        {RPC_DEADLINE_EXCEEDED, 504},
	        {RPC_NOT_FOUND, 404},
	        {RPC_ALREADY_EXISTS, 409},
	        {RPC_PERMISSION_DENIED, 403},
	        {RPC_RESOURCE_EXHAUSTED, 429},
	        {RPC_FAILED_PRECONDITION, 400},
	        {RPC_ABORTED, 409},
	        {RPC_OUT_OF_RANGE, 400},
	        {RPC_UNIMPLEMENTED, 501},
	        {RPC_INTERNAL, 500},
	        {RPC_UNAVAILABLE, 503},
	        {RPC_DATA_LOSS, 500},
	        {RPC_UNAUTHENTICATED, 401},
	};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		ck_assert_msg(svc_http_status(expect[i][0]) == expect[i][1], "code %d: %d, want %d",
		              expect[i][0], svc_http_status(expect[i][0]), expect[i][1]);
}
END_TEST

TCase *tcase_status(void)
{
	TCase *tc = tcase_create("status");
	test_add(tc, status_mapping);
	test_add(tc, http_status_mapping);
	return tc;
}
