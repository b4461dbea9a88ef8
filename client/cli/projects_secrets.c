/* projects_secrets.c - coffer projects ... and coffer secrets ... */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_project(const struct cli *c, const Coffer__V1__Project *p, bool table_row)
{
	char t[32];
	cli_time(p->create_time, t, sizeof(t));
	if (c->json) {
		printf("{\"name\":");
		cli_json_str(p->name);
		printf(",\"description\":");
		cli_json_str(p->description);
		printf(",\"revision\":%" PRId64 ",\"create_time\":\"%s\"}", p->revision, t);
	} else if (table_row) {
		printf("%-40s %9" PRId64 "  %s  %s\n", p->name, p->revision, t, p->description);
	} else {
		printf("name:        %s\ndescription: %s\nrevision:    %" PRId64
		       "\ncreated:     %s\n",
		       p->name, p->description, p->revision, t);
	}
}

static void print_secret(const struct cli *c, const Coffer__V1__Secret *s, bool table_row)
{
	char ct[32], ut[32];
	cli_time(s->create_time, ct, sizeof(ct));
	cli_time(s->update_time, ut, sizeof(ut));
	if (c->json) {
		printf("{\"project\":");
		cli_json_str(s->project);
		printf(",\"name\":");
		cli_json_str(s->name);
		printf(",\"visibility\":\"%s\",\"description\":",
		       cli_visibility_name(s->visibility));
		cli_json_str(s->description);
		printf(",\"revision\":%" PRId64 ",\"create_time\":\"%s\",\"update_time\":\"%s\"}",
		       s->revision, ct, ut);
	} else if (table_row) {
		printf("%-40s %-10s %9" PRId64 "  %s  %s\n", s->name,
		       cli_visibility_name(s->visibility), s->revision, ut, s->description);
	} else {
		printf("project:     %s\nname:        %s\nvisibility:  %s\ndescription: "
		       "%s\nrevision:    %" PRId64 "\ncreated:     %s\nupdated:     %s\n",
		       s->project, s->name, cli_visibility_name(s->visibility), s->description,
		       s->revision, ct, ut);
	}
}

/* Prints one object (a JSON line with --json) and frees it; returns 0. */
static int show_project(const struct cli *c, Coffer__V1__Project *p)
{
	print_project(c, p, false);
	if (c->json)
		putchar('\n');
	protobuf_c_message_free_unpacked(&p->base, NULL);
	return 0;
}

static int show_secret(const struct cli *c, Coffer__V1__Secret *s)
{
	print_secret(c, s, false);
	if (c->json)
		putchar('\n');
	protobuf_c_message_free_unpacked(&s->base, NULL);
	return 0;
}

static int projects_page(struct cli *c, const char *token, char **next, int *printed,
                         coffer_error *err)
{
	Coffer__V1__ListProjectsRequest req = COFFER__V1__LIST_PROJECTS_REQUEST__INIT;
	req.page_size = 1000;
	req.page_token = (char *)token;
	Coffer__V1__ListProjectsResponse *r = NULL;
	if (coffer_v1_projects_list_projects(c->ch, &req, &r, err) != 0)
		return -1;
	for (size_t i = 0; i < r->n_projects; i++) {
		cli_list_row(c, printed);
		print_project(c, r->projects[i], true);
	}
	*next = strdup(r->next_page_token);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

static int secrets_page(struct cli *c, const char *token, char **next, int *printed,
                        coffer_error *err)
{
	Coffer__V1__ListSecretsRequest req = COFFER__V1__LIST_SECRETS_REQUEST__INIT;
	req.project = c->argv[0];
	req.page_size = 1000;
	req.page_token = (char *)token;
	Coffer__V1__ListSecretsResponse *r = NULL;
	if (coffer_v1_secrets_list_secrets(c->ch, &req, &r, err) != 0)
		return -1;
	for (size_t i = 0; i < r->n_secrets; i++) {
		cli_list_row(c, printed);
		print_secret(c, r->secrets[i], true);
	}
	*next = strdup(r->next_page_token);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

static char *description(const struct cli *c)
{
	return (char *)(cli_opt(c, "--description") ? cli_opt(c, "--description") : "");
}

/* ---- coffer projects ---- */

int cmd_projects_create(struct cli *c)
{
	coffer_error err;
	Coffer__V1__CreateProjectRequest req = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
	req.name = c->argv[0];
	req.description = description(c);
	Coffer__V1__Project *p = NULL;
	if (coffer_v1_projects_create_project(c->ch, &req, &p, &err) != 0)
		return cli_rpc_error(&err);
	return show_project(c, p);
}

int cmd_projects_get(struct cli *c)
{
	coffer_error err;
	Coffer__V1__GetProjectRequest req = COFFER__V1__GET_PROJECT_REQUEST__INIT;
	req.name = c->argv[0];
	Coffer__V1__Project *p = NULL;
	if (coffer_v1_projects_get_project(c->ch, &req, &p, &err) != 0)
		return cli_rpc_error(&err);
	return show_project(c, p);
}

int cmd_projects_list(struct cli *c)
{
	return cli_list_all(c,
	                    "NAME                                      REVISION  CREATED       "
	                    "        DESCRIPTION",
	                    projects_page);
}

int cmd_projects_delete(struct cli *c)
{
	coffer_error err;
	Coffer__V1__DeleteProjectRequest req = COFFER__V1__DELETE_PROJECT_REQUEST__INIT;
	req.name = c->argv[0];
	int rc = cli_expected_revision(c, &req.expected_revision);
	if (rc)
		return rc;
	Google__Protobuf__Empty *e = NULL;
	if (coffer_v1_projects_delete_project(c->ch, &req, &e, &err) != 0)
		return cli_rpc_error(&err);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return cli_done(c);
}

/* ---- coffer secrets ---- */

int cmd_secrets_create(struct cli *c)
{
	coffer_error err;
	Coffer__V1__CreateSecretRequest req = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
	char *value = NULL;
	int rc = cli_read_value(c, &value);
	if (rc != 1)
		return rc == 0 ? cli_usage_error(c, "secrets create needs --value-stdin or "
		                                    "--value-file")
		               : rc;
	req.project = c->argv[0];
	req.name = c->argv[1];
	req.value = value;
	req.description = description(c);
	req.visibility = cli_opt(c, "--restricted") ? COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED
	                                            : COFFER__V1__VISIBILITY__VISIBILITY_MASKED;
	Coffer__V1__Secret *s = NULL;
	rc = coffer_v1_secrets_create_secret(c->ch, &req, &s, &err);
	cli_free_value(value);
	if (rc != 0)
		return cli_rpc_error(&err);
	return show_secret(c, s);
}

int cmd_secrets_get(struct cli *c)
{
	coffer_error err;
	Coffer__V1__GetSecretRequest req = COFFER__V1__GET_SECRET_REQUEST__INIT;
	req.project = c->argv[0];
	req.name = c->argv[1];
	Coffer__V1__Secret *s = NULL;
	if (coffer_v1_secrets_get_secret(c->ch, &req, &s, &err) != 0)
		return cli_rpc_error(&err);
	return show_secret(c, s);
}

int cmd_secrets_list(struct cli *c)
{
	return cli_list_all(c,
	                    "NAME                                     VISIBILITY  REVISION  "
	                    "UPDATED               DESCRIPTION",
	                    secrets_page);
}

int cmd_secrets_update(struct cli *c)
{
	coffer_error err;
	Coffer__V1__UpdateSecretRequest req = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
	int rc = cli_expected_revision(c, &req.expected_revision);
	if (rc)
		return rc;
	char *value = NULL;
	if ((rc = cli_read_value(c, &value)) == 2)
		return rc;
	req.project = c->argv[0];
	req.name = c->argv[1];
	if (value) {
		req.value_update_case = COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
		req.value = value;
	}
	if (cli_opt(c, "--description")) {
		req.description_update_case =
		        COFFER__V1__UPDATE_SECRET_REQUEST__DESCRIPTION_UPDATE_DESCRIPTION;
		req.description = description(c);
	}
	if (cli_opt(c, "--restricted"))
		req.visibility = COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED;
	Coffer__V1__Secret *s = NULL;
	rc = coffer_v1_secrets_update_secret(c->ch, &req, &s, &err);
	cli_free_value(value);
	if (rc != 0)
		return cli_rpc_error(&err);
	return show_secret(c, s);
}

int cmd_secrets_delete(struct cli *c)
{
	coffer_error err;
	Coffer__V1__DeleteSecretRequest req = COFFER__V1__DELETE_SECRET_REQUEST__INIT;
	req.project = c->argv[0];
	req.name = c->argv[1];
	int rc = cli_expected_revision(c, &req.expected_revision);
	if (rc)
		return rc;
	Google__Protobuf__Empty *e = NULL;
	if (coffer_v1_secrets_delete_secret(c->ch, &req, &e, &err) != 0)
		return cli_rpc_error(&err);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return cli_done(c);
}

int cmd_secrets_reveal(struct cli *c)
{
	coffer_error err;
	Coffer__V1__RevealSecretRequest req = COFFER__V1__REVEAL_SECRET_REQUEST__INIT;
	req.project = c->argv[0];
	req.name = c->argv[1];
	req.environment = (char *)(cli_opt(c, "--env") ? cli_opt(c, "--env") : "");
	const char *version = cli_opt(c, "--version");
	req.version = (Coffer__V1__Version)cli_version(version);
	if (version && req.version == 0)
		return cli_usage_error(c, "--version must be draft or live");
	Coffer__V1__RevealSecretResponse *r = NULL;
	if (coffer_v1_secrets_reveal_secret(c->ch, &req, &r, &err) != 0)
		return cli_rpc_error(&err);
	if (c->json) {
		printf("{\"value\":");
		cli_json_str(r->value);
		printf(",\"source\":\"%s\",\"revision\":%" PRId64 "}\n", cli_source_name(r->source),
		       r->revision);
	} else {
		puts(r->value);
	}
	size_t n = strlen(r->value);
	memset(r->value, 0, n);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}
