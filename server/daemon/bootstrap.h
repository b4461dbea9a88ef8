/*
 * bootstrap.h - what cofferd reads from files at start-up: the first admin token and the TLS
 * certificate, key and client CA.
 */
#ifndef COFFER_BOOTSTRAP_H
#define COFFER_BOOTSTRAP_H

#include "errors.h"
#include "session.h"
#include "settings.h"

struct tls_files {
	char *cert;      /* server certificate chain (PEM), or NULL: plaintext */
	char *key;       /* its private key (PEM); wiped when freed */
	char *client_ca; /* CA of client certificates (PEM), or NULL: no mTLS */
};

/* With no tokens at all: the first admin token, read from `path` or made and written there (mode
 * 0600). No tokens and no path: COF_EPRECOND with a message that says what to set. */
int bootstrap_token(struct session *ss, const char *path, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Reads the TLS files the settings name (none: plaintext). */
int bootstrap_tls(const struct settings *cfg, struct tls_files *out, struct cof_err *e)
        __attribute__((warn_unused_result));
/* Wipes the key and frees everything. NULL-safe. */
void bootstrap_tls_free(struct tls_files *t);

#endif
