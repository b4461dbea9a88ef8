/* access.c - coffer tokens create|list|revoke, coffer audit. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void print_token(const struct cli *c, const Coffer__V1__Token *t, bool row)
{
	char ct[32], et[32] = "never";
	cli_time(t->create_time, ct, sizeof(ct));
	if (t->expire_time)
		cli_time(t->expire_time, et, sizeof(et));
	char scope[512] = "";
	size_t n = 0;
	for (size_t i = 0; i < t->n_environments && n < sizeof(scope); i++)
		n += (size_t)snprintf(scope + n, sizeof(scope) - n, "%s%s", i ? "," : "",
		                      t->environments[i]);
	for (size_t i = 0; i < t->n_versions && n < sizeof(scope); i++)
		n += (size_t)snprintf(scope + n, sizeof(scope) - n, "%s%s", n ? "," : "",
		                      cli_version_name(t->versions[i]));
	if (c->json) {
		printf("{\"id\":\"%s\",\"name\":", t->id);
		cli_json_str(t->name);
		printf(",\"role\":\"%s\",\"project\":", cli_role_name(t->role));
		cli_json_str(t->project);
		printf(",\"scope\":");
		cli_json_str(scope);
		printf(",\"create_time\":\"%s\",\"expire_time\":\"%s\"}", ct, et);
	} else if (row) {
		printf("%-21s %-8s %-24s %-24s %-20s %s\n", t->id, cli_role_name(t->role),
		       *t->project ? t->project : "-", *scope ? scope : "-", et, t->name);
	}
}

static int tokens_page(struct cli *c, const char *token, char **next, int *printed,
                       coffer_error *err)
{
	Coffer__V1__ListTokensRequest req = COFFER__V1__LIST_TOKENS_REQUEST__INIT;
	req.project = (char *)(cli_opt(c, "--project") ? cli_opt(c, "--project") : "");
	req.page_size = 1000;
	req.page_token = (char *)token;
	Coffer__V1__ListTokensResponse *r = NULL;
	if (coffer_v1_access_list_tokens(c->ch, &req, &r, err) != 0)
		return -1;
	for (size_t i = 0; i < r->n_tokens; i++) {
		cli_list_row(c, printed);
		print_token(c, r->tokens[i], true);
	}
	*next = strdup(r->next_page_token);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

/* Splits a comma list into out (pointers into copy); returns the count or -1 when too many. */
static int split(const char *list, char *copy, size_t cap, char **out, int max)
{
	int n = 0;
	snprintf(copy, cap, "%s", list ? list : "");
	for (char *save = NULL, *t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (n == max)
			return -1;
		out[n++] = t;
	}
	return n;
}

int cmd_tokens_create(struct cli *c)
{
	coffer_error err;
	bool ok = true;
	Coffer__V1__CreateTokenRequest req = COFFER__V1__CREATE_TOKEN_REQUEST__INIT;
	req.name = c->argv[0];
	req.role = (Coffer__V1__Role)cli_role(cli_opt(c, "--role"));
	if (req.role == 0)
		return cli_usage_error(c, "--role must be admin, editor, viewer or runtime");
	req.project = (char *)(cli_opt(c, "--project") ? cli_opt(c, "--project") : "");
	req.ttl_seconds = cli_opt_i64(c, "--ttl", 0, &ok);
	if (!ok)
		return cli_usage_error(c, "--ttl must be a number of seconds");
	char envs_copy[4096], vers_copy[64];
	char *envs[64], *vers[4];
	int n_envs = split(cli_opt(c, "--envs"), envs_copy, sizeof(envs_copy), envs, 64);
	int n_vers = split(cli_opt(c, "--versions"), vers_copy, sizeof(vers_copy), vers, 4);
	if (n_envs < 0 || n_vers < 0)
		return cli_usage_error(c, "too many --envs or --versions");
	Coffer__V1__Version versions[4];
	for (int i = 0; i < n_vers; i++)
		if ((versions[i] = (Coffer__V1__Version)cli_version(vers[i])) == 0)
			return cli_usage_error(c, "--versions takes draft and live");
	req.environments = envs;
	req.n_environments = (size_t)n_envs;
	req.versions = versions;
	req.n_versions = (size_t)n_vers;
	Coffer__V1__CreateTokenResponse *r = NULL;
	if (coffer_v1_access_create_token(c->ch, &req, &r, &err) != 0)
		return cli_rpc_error(&err);
	if (c->json) {
		printf("{\"token\":");
		print_token(c, r->token, true);
		printf(",\"secret\":\"%s\"}\n", r->secret);
	} else {
		fprintf(stderr, "created %s (%s%s%s); the secret below is shown once:\n",
		        r->token->id, cli_role_name(r->token->role),
		        *r->token->project ? " of " : "", r->token->project);
		puts(r->secret);
	}
	memset(r->secret, 0, strlen(r->secret));
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

int cmd_tokens_list(struct cli *c)
{
	return cli_list_all(c,
	                    "ID                    ROLE     PROJECT                  SCOPE      "
	                    "              EXPIRES              NAME",
	                    tokens_page);
}

int cmd_tokens_revoke(struct cli *c)
{
	coffer_error err;
	Coffer__V1__RevokeTokenRequest req = COFFER__V1__REVOKE_TOKEN_REQUEST__INIT;
	req.id = c->argv[0];
	Google__Protobuf__Empty *e = NULL;
	if (coffer_v1_access_revoke_token(c->ch, &req, &e, &err) != 0)
		return cli_rpc_error(&err);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return cli_done(c);
}

static int audit_page(struct cli *c, const char *token, char **next, int *printed,
                      coffer_error *err)
{
	bool ok = true;
	Coffer__V1__ListAuditEventsRequest req = COFFER__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
	Google__Protobuf__Timestamp since = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	req.project = (char *)(cli_opt(c, "--project") ? cli_opt(c, "--project") : "");
	int64_t minutes = cli_opt_i64(c, "--since-minutes", 0, &ok);
	if (minutes > 0) {
		since.seconds = (int64_t)time(NULL) - minutes * 60;
		req.since = &since;
	}
	req.page_size = 1000;
	req.page_token = (char *)token;
	Coffer__V1__ListAuditEventsResponse *r = NULL;
	if (coffer_v1_access_list_audit_events(c->ch, &req, &r, err) != 0)
		return -1;
	for (size_t i = 0; i < r->n_events; i++) {
		const Coffer__V1__AuditEvent *a = r->events[i];
		char t[32];
		cli_time(a->time, t, sizeof(t));
		cli_list_row(c, printed);
		if (c->json) {
			printf("{\"time\":\"%s\",\"token_id\":\"%s\",\"method\":", t, a->token_id);
			cli_json_str(a->method);
			printf(",\"project\":");
			cli_json_str(a->project);
			printf(",\"environment\":");
			cli_json_str(a->environment);
			printf(",\"secret\":");
			cli_json_str(a->secret);
			printf(",\"version\":\"%s\",\"code\":\"%s\",\"peer\":",
			       cli_version_name(a->version), coffer_code_name(a->code));
			cli_json_str(a->peer);
			printf(",\"revision\":%" PRId64 "}", a->revision);
		} else {
			const char *m = strrchr(a->method, '/');
			printf("%s  %-21s %-20s %-16s %-16s %-20s %-5s %-19s %" PRId64 "\n", t,
			       *a->token_id ? a->token_id : "-", m ? m + 1 : a->method,
			       *a->project ? a->project : "-",
			       *a->environment ? a->environment : "-", *a->secret ? a->secret : "-",
			       cli_version_name(a->version), coffer_code_name(a->code),
			       a->revision);
		}
	}
	*next = strdup(r->next_page_token);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

int cmd_audit(struct cli *c)
{
	bool ok = true;
	if (cli_opt_i64(c, "--since-minutes", 0, &ok) < 0 || !ok)
		return cli_usage_error(c, "--since-minutes must be a number of minutes");
	return cli_list_all(
	        c,
	        "TIME                  TOKEN                 METHOD               PROJECT  "
	        "        ENVIRONMENT      SECRET               VER   CODE                REV",
	        audit_page);
}
