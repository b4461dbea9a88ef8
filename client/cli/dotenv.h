/*
 * dotenv.h - the CLI's .env reader (coffer secrets import): the common dialect, strictly.
 */
#ifndef COFFER_CLI_DOTENV_H
#define COFFER_CLI_DOTENV_H

#include <stdbool.h>
#include <stddef.h>

/* One NAME=value of a file, with the line it starts on. */
struct env_pair {
	char *name;  /* malloc'd */
	char *value; /* malloc'd; wiped by dotenv_free */
	int line;    /* 1-based */
};

/* Reads text[0..len): 0 and *out (n pairs, in file order; free with dotenv_free), or -1 with
 * err saying which line is wrong and why (never quoting it) and nothing in *out. */
int dotenv_parse(const char *text, size_t len, struct env_pair **out, size_t *n, char *err,
                 size_t errcap);
void dotenv_free(struct env_pair *pairs, size_t n);

#endif
