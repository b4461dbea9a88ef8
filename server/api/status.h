/*
 * status.h - the one table from COF_E* codes (store and domain errors) to gRPC status codes.
 */
#ifndef COFFER_STATUS_H
#define COFFER_STATUS_H

/* The gRPC code (enum rpc_code) for a COF_E* code; 0 for COF_OK. */
int status_from_code(int cof_code);

#endif
