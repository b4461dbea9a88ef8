/*
 * store_migrate.h - the numbered SQL migrations embedded from server/migrations/NNNN_name.sql.
 */
#ifndef COFFER_STORE_MIGRATE_H
#define COFFER_STORE_MIGRATE_H

#include <stddef.h>

struct migration {
	int version;      /* NNNN */
	const char *name; /* the rest of the file name */
	const char *sql;  /* the file */
};

extern const struct migration migrations[];
extern const size_t n_migrations;

#endif
