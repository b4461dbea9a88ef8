/* envs.c - coffer envs ..., coffer overrides ..., coffer merge. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_env(const struct cli *c, const Coffer__V1__Environment *e, bool row)
{
	char t[32];
	cli_time(e->create_time, t, sizeof(t));
	if (c->json) {
		printf("{\"project\":");
		cli_json_str(e->project);
		printf(",\"name\":");
		cli_json_str(e->name);
		printf(",\"description\":");
		cli_json_str(e->description);
		printf(",\"revision\":%" PRId64 ",\"create_time\":\"%s\"}%s", e->revision, t,
		       row ? "" : "\n");
	} else if (row) {
		printf("%-40s %9" PRId64 "  %-20s  %s\n", e->name, e->revision, t, e->description);
	} else {
		printf("project:     %s\nname:        %s\ndescription: %s\nrevision:    %" PRId64
		       "\ncreated:     %s\n",
		       e->project, e->name, e->description, e->revision, t);
	}
}

static int show_env(const struct cli *c, Coffer__V1__Environment *e)
{
	print_env(c, e, false);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return 0;
}

static int envs_page(struct cli *c, const char *token, char **next, int *printed, coffer_error *err)
{
	Coffer__V1__ListEnvironmentsRequest req = COFFER__V1__LIST_ENVIRONMENTS_REQUEST__INIT;
	req.project = c->argv[0];
	req.page_size = 1000;
	req.page_token = (char *)token;
	Coffer__V1__ListEnvironmentsResponse *r = NULL;
	if (coffer_v1_environments_list_environments(c->ch, &req, &r, err) != 0)
		return -1;
	for (size_t i = 0; i < r->n_environments; i++) {
		cli_list_row(c, printed);
		print_env(c, r->environments[i], true);
	}
	*next = strdup(r->next_page_token);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

int cmd_envs_create(struct cli *c)
{
	coffer_error err;
	Coffer__V1__CreateEnvironmentRequest req = COFFER__V1__CREATE_ENVIRONMENT_REQUEST__INIT;
	req.project = c->argv[0];
	req.name = c->argv[1];
	req.description = (char *)(cli_opt(c, "--description") ? cli_opt(c, "--description") : "");
	Coffer__V1__Environment *e = NULL;
	if (coffer_v1_environments_create_environment(c->ch, &req, &e, &err) != 0)
		return cli_rpc_error(&err);
	return show_env(c, e);
}

int cmd_envs_get(struct cli *c)
{
	coffer_error err;
	Coffer__V1__GetEnvironmentRequest req = COFFER__V1__GET_ENVIRONMENT_REQUEST__INIT;
	req.project = c->argv[0];
	req.name = c->argv[1];
	Coffer__V1__Environment *e = NULL;
	if (coffer_v1_environments_get_environment(c->ch, &req, &e, &err) != 0)
		return cli_rpc_error(&err);
	return show_env(c, e);
}

int cmd_envs_list(struct cli *c)
{
	return cli_list_all(c,
	                    "NAME                                      REVISION  CREATED   "
	                    "            DESCRIPTION",
	                    envs_page);
}

int cmd_envs_delete(struct cli *c)
{
	coffer_error err;
	Coffer__V1__DeleteEnvironmentRequest req = COFFER__V1__DELETE_ENVIRONMENT_REQUEST__INIT;
	req.project = c->argv[0];
	req.name = c->argv[1];
	int rc = cli_expected_revision(c, &req.expected_revision);
	if (rc)
		return rc;
	Google__Protobuf__Empty *e = NULL;
	if (coffer_v1_environments_delete_environment(c->ch, &req, &e, &err) != 0)
		return cli_rpc_error(&err);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return cli_done(c);
}

static void print_override(const struct cli *c, const Coffer__V1__Override *o, bool row)
{
	char t[32];
	cli_time(o->update_time, t, sizeof(t));
	if (c->json) {
		printf("{\"project\":");
		cli_json_str(o->project);
		printf(",\"environment\":");
		cli_json_str(o->environment);
		printf(",\"version\":\"%s\",\"secret\":", cli_version_name(o->version));
		cli_json_str(o->secret);
		printf(",\"revision\":%" PRId64 ",\"update_time\":\"%s\"}%s", o->revision, t,
		       row ? "" : "\n");
	} else if (row) {
		printf("%-40s %-7s %9" PRId64 "  %s\n", o->secret, cli_version_name(o->version),
		       o->revision, t);
	} else {
		printf("project:     %s\nenvironment: %s\nversion:     %s\nsecret:      "
		       "%s\nrevision:    %" PRId64 "\nupdated:     %s\n",
		       o->project, o->environment, cli_version_name(o->version), o->secret,
		       o->revision, t);
	}
}

static int overrides_page(struct cli *c, const char *token, char **next, int *printed,
                          coffer_error *err)
{
	Coffer__V1__ListOverridesRequest req = COFFER__V1__LIST_OVERRIDES_REQUEST__INIT;
	req.project = c->argv[0];
	req.environment = c->argv[1];
	req.version = (Coffer__V1__Version)cli_version(cli_opt(c, "--version"));
	req.page_size = 1000;
	req.page_token = (char *)token;
	Coffer__V1__ListOverridesResponse *r = NULL;
	if (coffer_v1_environments_list_overrides(c->ch, &req, &r, err) != 0)
		return -1;
	for (size_t i = 0; i < r->n_overrides; i++) {
		cli_list_row(c, printed);
		print_override(c, r->overrides[i], true);
	}
	*next = strdup(r->next_page_token);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

/* The version word of `overrides set|delete`; 0 (usage error printed) when it is neither. */
static int version_arg(const struct cli *c)
{
	int v = cli_version(c->argv[2]);
	if (v == 0)
		cli_usage_error(c, "the version must be draft or live, not '%s'", c->argv[2]);
	return v;
}

int cmd_overrides_set(struct cli *c)
{
	coffer_error err;
	Coffer__V1__SetOverrideRequest req = COFFER__V1__SET_OVERRIDE_REQUEST__INIT;
	int rc;
	if ((req.version = (Coffer__V1__Version)version_arg(c)) == 0)
		return 2;
	if ((rc = cli_expected_revision(c, &req.expected_revision)))
		return rc;
	char *value = NULL;
	if ((rc = cli_read_value(c, &value)) != 1)
		return rc == 0 ? cli_usage_error(c, "overrides set needs --value-stdin or "
		                                    "--value-file")
		               : rc;
	req.project = c->argv[0];
	req.environment = c->argv[1];
	req.secret = c->argv[3];
	req.value = value;
	Coffer__V1__Override *o = NULL;
	rc = coffer_v1_environments_set_override(c->ch, &req, &o, &err);
	cli_free_value(value);
	if (rc != 0)
		return cli_rpc_error(&err);
	print_override(c, o, false);
	protobuf_c_message_free_unpacked(&o->base, NULL);
	return 0;
}

int cmd_overrides_delete(struct cli *c)
{
	coffer_error err;
	Coffer__V1__DeleteOverrideRequest req = COFFER__V1__DELETE_OVERRIDE_REQUEST__INIT;
	int rc;
	if ((req.version = (Coffer__V1__Version)version_arg(c)) == 0)
		return 2;
	if ((rc = cli_expected_revision(c, &req.expected_revision)))
		return rc;
	req.project = c->argv[0];
	req.environment = c->argv[1];
	req.secret = c->argv[3];
	Google__Protobuf__Empty *e = NULL;
	if (coffer_v1_environments_delete_override(c->ch, &req, &e, &err) != 0)
		return cli_rpc_error(&err);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return cli_done(c);
}

int cmd_overrides_list(struct cli *c)
{
	const char *v = cli_opt(c, "--version");
	if (v && cli_version(v) == 0)
		return cli_usage_error(c, "--version must be draft or live");
	return cli_list_all(c,
	                    "SECRET                                   VERSION  REVISION  UPDATED",
	                    overrides_page);
}

int cmd_merge(struct cli *c)
{
	bool ok = true;
	Coffer__V1__MergeEnvironmentRequest req = COFFER__V1__MERGE_ENVIRONMENT_REQUEST__INIT;
	req.project = c->argv[0];
	req.source = c->argv[1];
	req.target = (char *)(cli_opt(c, "--into") ? cli_opt(c, "--into") : "");
	req.dry_run = cli_opt(c, "--dry-run") != NULL;
	req.delete_source = cli_opt(c, "--delete-source") != NULL;
	req.expected_source_revision = cli_opt_i64(c, "--expected-source-revision", 0, &ok);
	req.expected_target_revision = cli_opt_i64(c, "--expected-target-revision", 0, &ok);
	if (!ok)
		return cli_usage_error(c, "the expected revisions must be numbers");
	Coffer__V1__MergeEnvironmentResponse *r = NULL;
	coffer_error err;
	if (coffer_v1_environments_merge_environment(c->ch, &req, &r, &err) != 0)
		return cli_rpc_error(&err);
	const char *target = *req.target ? req.target : "main";
	if (c->json) {
		printf("{\"applied\":%s,\"revision\":%" PRId64
		       ",\"live_overrides_applied\":%d,\"changes\":[",
		       r->applied ? "true" : "false", r->revision, r->live_overrides_applied);
		for (size_t i = 0; i < r->n_changes; i++) {
			printf("%s{\"secret\":", i ? "," : "");
			cli_json_str(r->changes[i]->secret);
			printf(",\"version\":\"%s\",\"kind\":\"%s\"}",
			       cli_version_name(r->changes[i]->version),
			       cli_kind_name(r->changes[i]->kind));
		}
		puts("]}");
	} else {
		for (size_t i = 0; i < r->n_changes; i++)
			printf("%-8s %-40s %s\n", cli_kind_name(r->changes[i]->kind),
			       r->changes[i]->secret, cli_version_name(r->changes[i]->version));
		printf("%s: %zu change%s from %s into %s; %d live override%s on %s%s",
		       r->applied ? "merged" : "dry run", r->n_changes,
		       r->n_changes == 1 ? "" : "s", req.source, target, r->live_overrides_applied,
		       r->live_overrides_applied == 1 ? "" : "s", target,
		       r->applied ? "" : " afterwards");
		printf(" (revision %" PRId64 ")\n", r->revision);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}
