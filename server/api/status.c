/* status.c - COF_E* -> gRPC status (see API.md, "Status codes"). */
#include "status.h"

#include "errors.h"
#include "rpc.h"

static const struct {
	int cof; /* enum cof_code */
	int rpc; /* enum rpc_code */
} table[] = {
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
        {COF_EWOULDBLOCK, RPC_UNAVAILABLE}, /* never answered: the call moves to the database */
};

int status_from_code(int cof_code)
{
	for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].cof == cof_code)
			return table[i].rpc;
	return RPC_INTERNAL;
}
