/* bootstrap.c - the first admin token and the TLS files (see bootstrap.h). */
#include "bootstrap.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer_shared.h"
#include "log.h"
#include "tokens.h"

/* Certificates, keys and token files are small; anything larger is not one. */
#define MAX_FILE_BYTES (1 << 20)

static bool set(const char *s)
{
	return s != NULL && *s != '\0';
}

/* Writes token and a newline to a new file at path, readable by its owner only. */
static bool write_token_file(const char *path, const char *token)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	bool ok = fd >= 0 && write(fd, token, strlen(token)) == (ssize_t)strlen(token) &&
	          write(fd, "\n", 1) == 1;
	if (fd >= 0)
		close(fd);
	return ok;
}

int bootstrap_token(struct session *ss, const char *path, struct cof_err *e)
{
	int64_t n = 0;
	int rc = tokens_count(ss, &n, e);
	if (rc || n > 0)
		return rc;
	if (!set(path))
		return cof_err_set(
		        e, COF_EPRECOND,
		        "no tokens exist: set COFFER_BOOTSTRAP_TOKEN_FILE to create the first "
		        "admin token (or --insecure-no-auth for local development)");
	char token[TOKEN_SECRET_MAX] = "";
	size_t len = 0;
	struct stat st;
	/* An admin token others can read is not a secret. Group-readable is allowed: Kubernetes
	 * makes mounted Secrets readable by the pod's own fsGroup. */
	if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXO | S_IWGRP)))
		return cof_err_set(
		        e, COF_EINVAL,
		        "the bootstrap token file %s can be read or written by other users "
		        "(mode %04o): make it 0600 or 0400",
		        path, (unsigned)(st.st_mode & 07777));
	char *text = coffer_read_file(path, MAX_FILE_BYTES, &len);
	bool made = false;
	if (text && *text) {
		snprintf(token, sizeof(token), "%s", text);
		token[strcspn(token, "\r\n")] = '\0';
		explicit_bzero(text, len);
		free(text);
		if (!tokens_secret_well_formed(token))
			return cof_err_set(e, COF_EINVAL,
			                   "the bootstrap token file %s holds no valid token",
			                   path);
	} else {
		free(text);
		tokens_new_secret(token);
		made = true;
		if (!write_token_file(path, token)) {
			explicit_bzero(token, sizeof(token));
			return cof_err_set(e, COF_EINVAL,
			                   "cannot write the bootstrap token file %s", path);
		}
	}
	struct token out;
	rc = tokens_adopt_admin(ss, "bootstrap", token, &out, e);
	explicit_bzero(token, sizeof(token));
	if (rc == COF_EEXIST)
		return 0; /* another replica bootstrapped the same token */
	if (rc == 0)
		log_info("created the bootstrap admin token %s (%s %s)", out.id,
		         made ? "written to" : "read from", path);
	return rc;
}

int bootstrap_tls(const struct settings *cfg, struct tls_files *out, struct cof_err *e)
{
	*out = (struct tls_files){0};
	if (!set(cfg->tls_cert_file)) {
		if (set(cfg->tls_client_ca_file))
			return cof_err_set(e, COF_EINVAL,
			                   "--tls-client-ca-file needs --tls-cert-file");
		return 0;
	}
	out->cert = coffer_read_file(cfg->tls_cert_file, MAX_FILE_BYTES, NULL);
	out->key = set(cfg->tls_key_file)
	                   ? coffer_read_file(cfg->tls_key_file, MAX_FILE_BYTES, NULL)
	                   : NULL;
	if (out->cert == NULL || out->key == NULL)
		return cof_err_set(
		        e, COF_EINVAL, "cannot read the TLS certificate %s or its key %s",
		        cfg->tls_cert_file, set(cfg->tls_key_file) ? cfg->tls_key_file : "(none)");
	if (set(cfg->tls_client_ca_file) &&
	    (out->client_ca = coffer_read_file(cfg->tls_client_ca_file, MAX_FILE_BYTES, NULL)) ==
	            NULL)
		return cof_err_set(e, COF_EINVAL, "cannot read the client CA file %s",
		                   cfg->tls_client_ca_file);
	return 0;
}

void bootstrap_tls_free(struct tls_files *t)
{
	if (t == NULL)
		return;
	if (t->key)
		explicit_bzero(t->key, strlen(t->key));
	free(t->key);
	free(t->cert);
	free(t->client_ca);
	*t = (struct tls_files){0};
}
