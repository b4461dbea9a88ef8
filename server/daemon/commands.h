/*
 * commands.h - cofferd's subcommands other than serve: migrate, keys, new-token.
 *
 * Each returns a process exit status (0 ok, 1 failed, 2 usage) and prints what it did: results on
 * stdout, progress and errors on stderr.
 */
#ifndef COFFER_COMMANDS_H
#define COFFER_COMMANDS_H

#include <stdint.h>

#include "settings.h"

/* The options of the keys commands (see main.c's table). */
struct keys_args {
	int batch_size;                /* rows per transaction */
	int max_batches;               /* stop after this many (0: until done) */
	int batch_delay_ms;            /* pause between batches */
	const char *new_root_key_file; /* rekey: the new root key */
};

int cmd_keys_rotate(const struct settings *cfg, const struct keys_args *a);
int cmd_keys_rewrap(const struct settings *cfg, const struct keys_args *a);
int cmd_keys_rekey(const struct settings *cfg, const struct keys_args *a);
int cmd_keys_verify(const struct settings *cfg, const struct keys_args *a);
int cmd_keys_status(const struct settings *cfg, const struct keys_args *a);

#endif
