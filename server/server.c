/* server.c - start-up, keyring bootstrap, the service list and the call log (see server.h). */
#include "server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>


#include "access.h"
#include "audit.h"
#include "coffer_registry.h"
#include "handlers.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"

struct server {
	struct app app;         /* shared state handed to handlers */
	struct rpc_server *rpc; /* the gRPC runtime */
	struct config cfg;      /* a copy of the settings (their strings are the caller's) */
	char *tls_cert;         /* PEM contents, or NULL */
	char *tls_key;          /* its key */
	char *tls_client_ca;    /* client CA, or NULL */
};

const struct rpc_binding app_bindings[] = {
        {&coffer__v1__projects__service, &projects_handlers},
        {&coffer__v1__secrets__service, &secrets_handlers},
        {&coffer__v1__environments__service, &environments_handlers},
        {&coffer__v1__access__service, &access_handlers},
        {&grpc__health__v1__health__service, &health_handlers},
        {&grpc__reflection__v1alpha__server_reflection__service, &reflection_handlers},
};
const size_t app_n_bindings = sizeof(app_bindings) / sizeof(app_bindings[0]);

void app_on_call(const struct rpc_call_info *info, void *app_arg)
{
	struct app *app = app_arg;
	metrics_observe(app->metrics, info->method, info->code, info->duration_ms);
	enum log_level level = info->code == RPC_INTERNAL ? LOG_ERROR : LOG_INFO;
	if (!log_enabled(level))
		return;
	char members[1024];
	char method[256] = "", peer[128] = "", project[160] = "";
	log_json_escape(method, sizeof(method), info->method);
	log_json_escape(peer, sizeof(peer), info->peer);
	log_json_escape(project, sizeof(project), info->project ? info->project : "");
	snprintf(members, sizeof(members),
	         "\"request_id\":%" PRIu64
	         ",\"method\":\"%s\",\"code\":\"%s\",\"duration_ms\":%.3f,"
	         "\"project\":\"%s\",\"peer\":\"%s\"",
	         info->request_id, method, rpc_code_name(info->code), info->duration_ms, project,
	         peer);
	log_fields(level, "call", members);
}

int server_global_init(void)
{
	if (crypt_init() != 0)
		return COF_EINTERNAL;
	rpc_global_init();
	return 0;
}

void server_global_shutdown(void)
{
	rpc_global_shutdown();
}

static int connect_with_wait(const struct config *cfg, int wait_s, struct store **out,
                             struct cof_err *e)
{
	for (int i = 0;; i++) {
		int rc = store_open(cfg->database_url, out, e);
		if (rc == 0 || rc != COF_EUNAVAIL || i >= wait_s)
			return rc;
		if (i == 0)
			log_warn("database not reachable yet (%s); retrying for up to %d s",
			         e->detail, wait_s);
		store_close(*out);
		*out = NULL;
		sleep(1);
	}
}

#define TOKEN_KEY_NAME "token-hash"

/* Loads the token-hashing key, creating it on a fresh database. */
static int load_token_key(struct store *s, struct crypt_keyring *kr, struct cof_err *e)
{
	uint8_t *wrapped = NULL;
	size_t len = 0;
	int rc = store_server_key_get(s, TOKEN_KEY_NAME, &wrapped, &len, e);
	if (rc == COF_ENOTFOUND) {
		uint8_t fresh[CRYPT_WRAPPED_KEY_BYTES];
		if ((rc = crypt_token_key_new(kr, fresh, e)) ||
		    (rc = store_server_key_insert(s, TOKEN_KEY_NAME, fresh, sizeof(fresh), e)) ||
		    (rc = store_server_key_get(s, TOKEN_KEY_NAME, &wrapped, &len, e)))
			return rc;
	} else if (rc) {
		return rc;
	}
	rc = crypt_token_key_set(kr, wrapped, len, e);
	free(wrapped);
	return rc;
}

/* Reads a whole small file into a NUL-terminated malloc'd string; NULL when it cannot. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 1 << 16, len = 0, n;
	char *buf = malloc(cap + 1);
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			char *bigger = realloc(buf, (cap *= 2) + 1);
			if (bigger == NULL)
				free(buf);
			buf = bigger;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* With no tokens at all: the first admin token, from the bootstrap file or made and written there.
 */
static int bootstrap_token(struct store *s, struct crypt_keyring *kr, const char *path,
                           struct cof_err *e)
{
	int64_t n = 0;
	int rc = store_token_count(s, &n, e);
	if (rc || n > 0)
		return rc;
	if (path == NULL || *path == '\0')
		return cof_err_set(
		        e, COF_EPRECOND,
		        "no tokens exist: set COFFER_BOOTSTRAP_TOKEN_FILE to create the first "
		        "admin token (or --insecure-no-auth for local development)");
	char token[CRYPT_TOKEN_CHARS + 2] = "";
	char *text = read_text(path);
	bool made = false;
	if (text && *text) {
		snprintf(token, sizeof(token), "%s", text);
		token[strcspn(token, "\r\n")] = '\0';
		crypt_wipe(text, strlen(text));
		free(text);
		if (!crypt_token_well_formed(token))
			return cof_err_set(e, COF_EINVAL,
			                   "the bootstrap token file %s holds no valid token",
			                   path);
	} else {
		free(text);
		crypt_token_new(token);
		made = true;
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		bool ok = fd >= 0 && write(fd, token, strlen(token)) == (ssize_t)strlen(token) &&
		          write(fd, "\n", 1) == 1;
		if (fd >= 0)
			close(fd);
		if (!ok) {
			crypt_wipe(token, sizeof(token));
			return cof_err_set(e, COF_EINVAL,
			                   "cannot write the bootstrap token file %s", path);
		}
	}
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES];
	struct store_token t = {.role = 1};
	struct store_token out;
	snprintf(t.name, sizeof(t.name), "bootstrap");
	crypt_token_id(t.id);
	rc = crypt_token_hash(kr, token, hash, e);
	crypt_wipe(token, sizeof(token));
	if (rc == 0)
		rc = store_token_insert(s, &t, hash, sizeof(hash), 0, &out, e);
	if (rc == COF_EEXIST)
		return 0; /* another replica bootstrapped the same token */
	if (rc == 0)
		log_info("created the bootstrap admin token %s (%s %s)", out.id,
		         made ? "written to" : "read from", path);
	return rc;
}

static int load_tls(struct server *srv, const struct config *cfg, struct cof_err *e)
{
	if (cfg->tls_cert_file == NULL || *cfg->tls_cert_file == '\0') {
		if (cfg->tls_client_ca_file && *cfg->tls_client_ca_file)
			return cof_err_set(e, COF_EINVAL,
			                   "--tls-client-ca-file needs --tls-cert-file");
		return 0;
	}
	srv->tls_cert = read_text(cfg->tls_cert_file);
	srv->tls_key =
	        cfg->tls_key_file && *cfg->tls_key_file ? read_text(cfg->tls_key_file) : NULL;
	if (srv->tls_cert == NULL || srv->tls_key == NULL)
		return cof_err_set(
		        e, COF_EINVAL, "cannot read the TLS certificate %s or its key %s",
		        cfg->tls_cert_file, cfg->tls_key_file ? cfg->tls_key_file : "(none)");
	if (cfg->tls_client_ca_file && *cfg->tls_client_ca_file &&
	    (srv->tls_client_ca = read_text(cfg->tls_client_ca_file)) == NULL)
		return cof_err_set(e, COF_EINVAL, "cannot read the client CA file %s",
		                   cfg->tls_client_ca_file);
	return 0;
}

static void free_tls(struct server *srv)
{
	if (srv->tls_key)
		crypt_wipe(srv->tls_key, strlen(srv->tls_key));
	free(srv->tls_key);
	free(srv->tls_cert);
	free(srv->tls_client_ca);
}

int server_migrate(const struct config *cfg, int connect_wait_s, struct cof_err *e)
{
	struct store *s = NULL;
	int rc = connect_with_wait(cfg, connect_wait_s, &s, e);
	int applied = 0;
	if (rc == 0 && (rc = store_migrate(s, &applied, e)) == 0)
		log_info("database schema is up to date (%d migration%s applied)", applied,
		         applied == 1 ? "" : "s");
	store_close(s);
	return rc;
}

int server_start(const struct config *cfg, int connect_wait_s, struct server **out,
                 struct cof_err *e)
{
	*out = NULL;
	struct server *srv = calloc(1, sizeof(*srv));
	struct store *s = NULL;
	int rc;
	if (srv == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	srv->cfg = *cfg;
	srv->app.cfg = &srv->cfg;
	if ((rc = crypt_keyring_new(cfg->root_key_file, &srv->app.keyring, e)))
		goto out_free;
	if ((rc = connect_with_wait(cfg, connect_wait_s, &s, e)))
		goto out_free;
	int applied = 0, known = 0;
	if (cfg->migrate && (rc = store_migrate(s, &applied, e)))
		goto out_free;
	if ((rc = store_schema_version(s, &applied, &known, e)))
		goto out_free;
	if (applied < known) {
		rc = cof_err_set(
		        e, COF_EPRECOND,
		        "the database schema is at version %d and this cofferd needs %d: run "
		        "'cofferd migrate' or start with --migrate",
		        applied, known);
		goto out_free;
	}
	if ((rc = keys_load(s, srv->app.keyring, true, e)) ||
	    (rc = load_token_key(s, srv->app.keyring, e)) || (rc = load_tls(srv, cfg, e)))
		goto out_free;
	srv->app.insecure_no_auth = cfg->insecure_no_auth;
	if (cfg->insecure_no_auth)
		log_warn("!!! AUTHENTICATION IS OFF (--insecure-no-auth): every caller may do "
		         "anything. "
		         "Never run this way outside local development. !!!");
	else if ((rc = bootstrap_token(s, srv->app.keyring, cfg->bootstrap_token_file, e)))
		goto out_free;
	if (srv->tls_cert == NULL)
		log_warn("serving plaintext gRPC (no --tls-cert-file): use TLS outside a loopback "
		         "or "
		         "a mesh that encrypts");
	store_close(s);
	s = NULL;
	if ((rc = audit_start(cfg->database_url, &srv->app.audit, e)) ||
	    (rc = metrics_new(app_bindings, app_n_bindings, cfg->workers, &srv->app.metrics, e)) ||
	    (rc = metrics_serve(srv->app.metrics, cfg->metrics_listen, srv->app.audit,
	                        srv->app.keyring, e)))
		goto out_free;
	struct rpc_server_opts opts = {
	        .listen = cfg->listen,
	        .workers = cfg->workers,
	        .slots_per_method = cfg->slots_per_method,
	        .max_message_bytes = cfg->max_message_bytes,
	        .app = &srv->app,
	        .worker_init = app_worker_init,
	        .worker_fini = app_worker_fini,
	        .on_call = app_on_call,
	        .authorize = access_authorize,
	        .before_finish = access_before_finish,
	        .tls_cert_pem = srv->tls_cert,
	        .tls_key_pem = srv->tls_key,
	        .tls_client_ca_pem = srv->tls_client_ca,
	};
	if ((rc = rpc_server_start(&opts, app_bindings, app_n_bindings, &srv->rpc, e)))
		goto out_free;
	*out = srv;
	return 0;
out_free:
	store_close(s);
	metrics_free(srv->app.metrics);
	audit_stop(srv->app.audit);
	free_tls(srv);
	crypt_keyring_free(srv->app.keyring);
	free(srv);
	return rc;
}

int server_metrics_port(const struct server *srv)
{
	return metrics_port(srv->app.metrics);
}

int server_port(const struct server *srv)
{
	return rpc_server_port(srv->rpc);
}

void server_stop(struct server *srv, int grace_seconds)
{
	if (srv == NULL)
		return;
	rpc_server_shutdown(srv->rpc, grace_seconds);
	rpc_server_free(srv->rpc);
	metrics_free(srv->app.metrics);
	audit_stop(srv->app.audit);
	free_tls(srv);
	crypt_keyring_free(srv->app.keyring);
	free(srv);
}

int server_keys(const struct config *cfg, const char *sub, int argc, char **argv)
{
	struct keys_rewrap_opts ro = {.batch_size = 200};
	const char *new_root = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v && strcmp(a, "--batch-size") == 0)
			ro.batch_size = atoi(v);
		else if (v && strcmp(a, "--max-batches") == 0)
			ro.max_batches = atoi(v);
		else if (v && strcmp(a, "--batch-delay-ms") == 0)
			ro.delay_ms = atoi(v);
		else if (v && strcmp(a, "--new-root-key-file") == 0)
			new_root = v;
		else {
			fprintf(stderr, "cofferd keys: unknown option %s\n", a);
			return 2;
		}
		i++;
	}
	if (ro.batch_size < 1 || ro.batch_size > 10000 || ro.max_batches < 0 || ro.delay_ms < 0) {
		fprintf(stderr,
		        "cofferd keys: --batch-size is 1 to 10000; others are not negative\n");
		return 2;
	}
	struct cof_err e = {0};
	struct crypt_keyring *kr = NULL, *next = NULL;
	struct store *s = NULL;
	int status = 1;
	if (crypt_keyring_new(cfg->root_key_file, &kr, &e) != 0 ||
	    connect_with_wait(cfg, 30, &s, &e) != 0 || keys_load(s, kr, false, &e) != 0 ||
	    load_token_key(s, kr, &e) != 0)
		goto out;
	if (strcmp(sub, "rotate") == 0) {
		int32_t term = 0;
		if (keys_rotate(s, kr, &term, &e) != 0)
			goto out;
		printf("keyring term %d is active; new writes use it. Run 'cofferd keys rewrap' to "
		       "move "
		       "older values onto it.\n",
		       (int)term);
	} else if (strcmp(sub, "rewrap") == 0) {
		int64_t moved = 0, failed = 0;
		if (keys_rewrap(s, kr, &ro, &moved, &failed, &e) != 0)
			goto out;
		printf("re-sealed %lld value row%s under term %d%s; %lld did not open\n",
		       (long long)moved, moved == 1 ? "" : "s", (int)crypt_keyring_active_term(kr),
		       ro.max_batches ? " (stopped after --max-batches)" : "", (long long)failed);
		if (failed) {
			status = 1;
			goto out_quiet;
		}
	} else if (strcmp(sub, "rekey") == 0) {
		if (new_root == NULL) {
			fprintf(stderr, "cofferd keys rekey needs --new-root-key-file\n");
			status = 2;
			goto out_quiet;
		}
		if (crypt_keyring_new(new_root, &next, &e) != 0 || keys_rekey(s, kr, next, &e) != 0)
			goto out;
		printf("the keyring is now wrapped by the root key in %s: restart every cofferd "
		       "with "
		       "COFFER_ROOT_KEY_FILE pointing at it\n",
		       new_root);
	} else if (strcmp(sub, "verify") == 0 || strcmp(sub, "status") == 0) {
		int32_t terms[1024];
		int64_t counts[1024];
		int n = 0;
		if (store_term_counts(s, terms, counts, 1024, &n, &e) != 0)
			goto out;
		for (int i = 0; i < n; i++)
			printf("term %d%s: %lld value row%s\n", (int)terms[i],
			       terms[i] == crypt_keyring_active_term(kr) ? " (active)" : "",
			       (long long)counts[i], counts[i] == 1 ? "" : "s");
		if (strcmp(sub, "verify") == 0) {
			int64_t ok = 0, bad = 0;
			if (keys_verify(s, kr, &ok, &bad, &e) != 0)
				goto out;
			printf("%lld value row%s open, %lld do not\n", (long long)ok,
			       ok == 1 ? "" : "s", (long long)bad);
			if (bad) {
				status = 1;
				goto out_quiet;
			}
		}
	} else {
		fprintf(stderr,
		        "cofferd keys: unknown subcommand '%s' (rotate, rewrap, rekey, verify, "
		        "status)\n",
		        sub);
		status = 2;
		goto out_quiet;
	}
	status = 0;
	goto out_quiet;
out:
	fprintf(stderr, "cofferd keys %s: %s%s%s\n", sub, e.msg, e.detail[0] ? ": " : "", e.detail);
out_quiet:
	store_close(s);
	crypt_keyring_free(kr);
	crypt_keyring_free(next);
	return status;
}
