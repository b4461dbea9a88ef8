/* status.c - COF_E* -> gRPC status, as the status table (coffer_status.def) says. */
#include "status.h"

#include "errors.h"
#include "rpc.h"

int status_from_code(int cof_code)
{
	switch (cof_code) {
#define INTERNAL(cof, name)                                                                        \
	case cof:                                                                                  \
		return RPC_##name;
#include "coffer_status.def"
	}
	return RPC_INTERNAL;
}
