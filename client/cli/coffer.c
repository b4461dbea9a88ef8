/*
 * coffer - the command-line client, built on libcoffer's channel and the generated typed stubs.
 *
 *   coffer [--addr A] [--token T] [--ca-file F] [--timeout-ms N] [--json] GROUP VERB [ARGS]
 *
 * Tables (key: value lines) for people, --json for scripts. Values are read from standard input or
 * a file so that they need not appear in argv or shell history. Exit status: 0 on success, 1 with
 * "coffer: CODE: message" on stderr when the server refuses, 2 on a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coffer/v1/projects.stub.h"
#include "coffer/v1/secrets.stub.h"

#define MAX_VALUE_BYTES 65536

struct opt {
	const char *name;  /* "--value-file" */
	const char *value; /* its value, "" for a flag that was given, NULL when absent */
};

struct cli {
	coffer_channel *ch; /* open channel */
	bool json;          /* --json */
	int argc;           /* positionals after GROUP VERB */
	char **argv;
	struct opt opts[16]; /* verb options */
	int n_opts;
};

static const char *const FLAGS[] = {"--json", "--restricted", "--value-stdin", NULL};

static void usage(FILE *out)
{
	fputs("usage: coffer [--addr HOST:PORT] [--token T] [--ca-file F] [--timeout-ms N] "
	      "[--json]\n"
	      "              GROUP VERB [ARGS]\n\n"
	      "  projects create NAME [--description D]\n"
	      "  projects get NAME\n"
	      "  projects list\n"
	      "  projects delete NAME [--expected-revision R]\n"
	      "  secrets create PROJECT NAME (--value-stdin | --value-file F) [--restricted] "
	      "[--description D]\n"
	      "  secrets get PROJECT NAME\n"
	      "  secrets list PROJECT\n"
	      "  secrets update PROJECT NAME [--value-stdin | --value-file F] [--description D]\n"
	      "                 [--restricted] [--expected-revision R]\n"
	      "  secrets delete PROJECT NAME [--expected-revision R]\n"
	      "  secrets reveal PROJECT NAME [--env E --version draft|live]\n\n"
	      "Environment: COFFER_ADDR (default 127.0.0.1:50051), COFFER_TOKEN, COFFER_CA_FILE.\n",
	      out);
}

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("coffer: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(" (see coffer --help)\n", stderr);
	va_end(ap);
	return 2;
}

static int rpc_error(const coffer_error *err)
{
	fprintf(stderr, "coffer: %s: %s\n", coffer_code_name(err->code), err->message);
	return 1;
}

static const char *opt(const struct cli *c, const char *name)
{
	for (int i = 0; i < c->n_opts; i++)
		if (strcmp(c->opts[i].name, name) == 0)
			return c->opts[i].value;
	return NULL;
}

static bool is_flag(const char *name)
{
	for (int i = 0; FLAGS[i]; i++)
		if (strcmp(FLAGS[i], name) == 0)
			return true;
	return false;
}

static int64_t opt_i64(const struct cli *c, const char *name, int64_t def, bool *ok)
{
	const char *v = opt(c, name);
	if (v == NULL)
		return def;
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *v == '\0' || *end != '\0') {
		*ok = false;
		return def;
	}
	return n;
}

/* ---- output ---- */

static void json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void time_str(const Google__Protobuf__Timestamp *ts, char *buf, size_t cap)
{
	if (ts == NULL) {
		snprintf(buf, cap, "-");
		return;
	}
	time_t t = (time_t)ts->seconds;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *visibility_name(int v)
{
	return v == COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED ? "restricted" : "masked";
}

static void print_project(const struct cli *c, const Coffer__V1__Project *p, bool table_row)
{
	char t[32];
	time_str(p->create_time, t, sizeof(t));
	if (c->json) {
		printf("{\"name\":");
		json_str(p->name);
		printf(",\"description\":");
		json_str(p->description);
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
	time_str(s->create_time, ct, sizeof(ct));
	time_str(s->update_time, ut, sizeof(ut));
	if (c->json) {
		printf("{\"project\":");
		json_str(s->project);
		printf(",\"name\":");
		json_str(s->name);
		printf(",\"visibility\":\"%s\",\"description\":", visibility_name(s->visibility));
		json_str(s->description);
		printf(",\"revision\":%" PRId64 ",\"create_time\":\"%s\",\"update_time\":\"%s\"}",
		       s->revision, ct, ut);
	} else if (table_row) {
		printf("%-40s %-10s %9" PRId64 "  %s  %s\n", s->name,
		       visibility_name(s->visibility), s->revision, ut, s->description);
	} else {
		printf("project:     %s\nname:        %s\nvisibility:  %s\ndescription: "
		       "%s\nrevision:    %" PRId64 "\ncreated:     %s\nupdated:     %s\n",
		       s->project, s->name, visibility_name(s->visibility), s->description,
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

/* ---- values from stdin or a file ---- */

/* Reads a value per --value-stdin / --value-file into *out (malloc'd). One trailing newline is
 * dropped, so `<<< 'v'` and files written by editors give the value itself. 0 when neither option
 * was given, 1 when a value was read, 2 on a usage error. */
static int read_value(const struct cli *c, char **out)
{
	*out = NULL;
	const char *file = opt(c, "--value-file");
	bool from_stdin = opt(c, "--value-stdin") != NULL;
	if (!file && !from_stdin)
		return 0;
	if (file && from_stdin)
		return usage_error("give the value with --value-stdin or --value-file, not both");
	FILE *f = from_stdin ? stdin : fopen(file, "rb");
	if (f == NULL)
		return usage_error("cannot read %s: %s", file, strerror(errno));
	char *buf = malloc(MAX_VALUE_BYTES + 2);
	size_t n = buf ? fread(buf, 1, MAX_VALUE_BYTES + 2, f) : 0;
	if (!from_stdin)
		fclose(f);
	if (buf == NULL)
		return usage_error("out of memory");
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n > MAX_VALUE_BYTES) {
		free(buf);
		return usage_error("the value is larger than %d bytes", MAX_VALUE_BYTES);
	}
	if (memchr(buf, '\0', n) != NULL) {
		free(buf);
		return usage_error("the value contains a NUL byte");
	}
	buf[n] = '\0';
	*out = buf;
	return 1;
}

static void free_value(char *v)
{
	if (v) {
		volatile char *p = v;
		while (*p)
			*p++ = 0;
		free(v);
	}
}

/* ---- listing every page ---- */

/* Fetches and prints one page after `token`; sets *next (malloc'd, "" on the last page). */
typedef int (*page_fn)(struct cli *c, const char *token, char **next, int *printed,
                       coffer_error *err);

/* The separator before the next item of a JSON array. */
static void json_sep(const struct cli *c, int *printed)
{
	if (c->json && (*printed)++)
		putchar(',');
}

static int list_all(struct cli *c, const char *header, page_fn page)
{
	coffer_error err;
	char *token = strdup("");
	int printed = 0;
	if (c->json)
		putchar('[');
	else
		puts(header);
	while (token != NULL) {
		char *next = NULL;
		if (page(c, token, &next, &printed, &err) != 0) {
			free(token);
			return rpc_error(&err);
		}
		free(token);
		token = next && *next ? next : NULL;
		if (token == NULL)
			free(next);
	}
	if (c->json)
		puts("]");
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
		json_sep(c, printed);
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
		json_sep(c, printed);
		print_secret(c, r->secrets[i], true);
	}
	*next = strdup(r->next_page_token);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

/* ---- projects ---- */

static int projects_cmd(struct cli *c, const char *verb)
{
	coffer_error err;
	bool ok = true;
	if (strcmp(verb, "create") == 0 && c->argc == 1) {
		Coffer__V1__CreateProjectRequest req = COFFER__V1__CREATE_PROJECT_REQUEST__INIT;
		req.name = c->argv[0];
		req.description = (char *)(opt(c, "--description") ? opt(c, "--description") : "");
		Coffer__V1__Project *p = NULL;
		if (coffer_v1_projects_create_project(c->ch, &req, &p, &err) != 0)
			return rpc_error(&err);
		return show_project(c, p);
	}
	if (strcmp(verb, "get") == 0 && c->argc == 1) {
		Coffer__V1__GetProjectRequest req = COFFER__V1__GET_PROJECT_REQUEST__INIT;
		req.name = c->argv[0];
		Coffer__V1__Project *p = NULL;
		if (coffer_v1_projects_get_project(c->ch, &req, &p, &err) != 0)
			return rpc_error(&err);
		return show_project(c, p);
	}
	if (strcmp(verb, "list") == 0 && c->argc == 0)
		return list_all(c,
		                "NAME                                      REVISION  CREATED       "
		                "        DESCRIPTION",
		                projects_page);
	if (strcmp(verb, "delete") == 0 && c->argc == 1) {
		Coffer__V1__DeleteProjectRequest req = COFFER__V1__DELETE_PROJECT_REQUEST__INIT;
		req.name = c->argv[0];
		req.expected_revision = opt_i64(c, "--expected-revision", 0, &ok);
		if (!ok)
			return usage_error("--expected-revision must be a number");
		Google__Protobuf__Empty *e = NULL;
		if (coffer_v1_projects_delete_project(c->ch, &req, &e, &err) != 0)
			return rpc_error(&err);
		protobuf_c_message_free_unpacked(&e->base, NULL);
		if (c->json)
			puts("{}");
		return 0;
	}
	return usage_error("projects %s: wrong verb or arguments", verb);
}

/* ---- secrets ---- */

static int secrets_cmd(struct cli *c, const char *verb)
{
	coffer_error err;
	bool ok = true;
	int rc;
	if (strcmp(verb, "create") == 0 && c->argc == 2) {
		Coffer__V1__CreateSecretRequest req = COFFER__V1__CREATE_SECRET_REQUEST__INIT;
		char *value = NULL;
		if ((rc = read_value(c, &value)) != 1)
			return rc == 0 ? usage_error("secrets create needs --value-stdin or "
			                             "--value-file")
			               : rc;
		req.project = c->argv[0];
		req.name = c->argv[1];
		req.value = value;
		req.description = (char *)(opt(c, "--description") ? opt(c, "--description") : "");
		req.visibility = opt(c, "--restricted")
		                         ? COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED
		                         : COFFER__V1__VISIBILITY__VISIBILITY_MASKED;
		Coffer__V1__Secret *s = NULL;
		rc = coffer_v1_secrets_create_secret(c->ch, &req, &s, &err);
		free_value(value);
		if (rc != 0)
			return rpc_error(&err);
		return show_secret(c, s);
	}
	if (strcmp(verb, "get") == 0 && c->argc == 2) {
		Coffer__V1__GetSecretRequest req = COFFER__V1__GET_SECRET_REQUEST__INIT;
		req.project = c->argv[0];
		req.name = c->argv[1];
		Coffer__V1__Secret *s = NULL;
		if (coffer_v1_secrets_get_secret(c->ch, &req, &s, &err) != 0)
			return rpc_error(&err);
		return show_secret(c, s);
	}
	if (strcmp(verb, "list") == 0 && c->argc == 1)
		return list_all(c,
		                "NAME                                     VISIBILITY  REVISION  "
		                "UPDATED               DESCRIPTION",
		                secrets_page);
	if (strcmp(verb, "update") == 0 && c->argc == 2) {
		Coffer__V1__UpdateSecretRequest req = COFFER__V1__UPDATE_SECRET_REQUEST__INIT;
		char *value = NULL;
		if ((rc = read_value(c, &value)) == 2)
			return rc;
		req.project = c->argv[0];
		req.name = c->argv[1];
		if (value) {
			req.value_update_case =
			        COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE;
			req.value = value;
		}
		if (opt(c, "--description")) {
			req.description_update_case =
			        COFFER__V1__UPDATE_SECRET_REQUEST__DESCRIPTION_UPDATE_DESCRIPTION;
			req.description = (char *)opt(c, "--description");
		}
		if (opt(c, "--restricted"))
			req.visibility = COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED;
		req.expected_revision = opt_i64(c, "--expected-revision", 0, &ok);
		if (!ok) {
			free_value(value);
			return usage_error("--expected-revision must be a number");
		}
		Coffer__V1__Secret *s = NULL;
		rc = coffer_v1_secrets_update_secret(c->ch, &req, &s, &err);
		free_value(value);
		if (rc != 0)
			return rpc_error(&err);
		return show_secret(c, s);
	}
	if (strcmp(verb, "delete") == 0 && c->argc == 2) {
		Coffer__V1__DeleteSecretRequest req = COFFER__V1__DELETE_SECRET_REQUEST__INIT;
		req.project = c->argv[0];
		req.name = c->argv[1];
		req.expected_revision = opt_i64(c, "--expected-revision", 0, &ok);
		if (!ok)
			return usage_error("--expected-revision must be a number");
		Google__Protobuf__Empty *e = NULL;
		if (coffer_v1_secrets_delete_secret(c->ch, &req, &e, &err) != 0)
			return rpc_error(&err);
		protobuf_c_message_free_unpacked(&e->base, NULL);
		if (c->json)
			puts("{}");
		return 0;
	}
	if (strcmp(verb, "reveal") == 0 && c->argc == 2) {
		Coffer__V1__RevealSecretRequest req = COFFER__V1__REVEAL_SECRET_REQUEST__INIT;
		req.project = c->argv[0];
		req.name = c->argv[1];
		req.environment = (char *)(opt(c, "--env") ? opt(c, "--env") : "");
		const char *version = opt(c, "--version");
		if (version && strcmp(version, "draft") == 0)
			req.version = COFFER__V1__VERSION__VERSION_DRAFT;
		else if (version && strcmp(version, "live") == 0)
			req.version = COFFER__V1__VERSION__VERSION_LIVE;
		else if (version)
			return usage_error("--version must be draft or live");
		Coffer__V1__RevealSecretResponse *r = NULL;
		if (coffer_v1_secrets_reveal_secret(c->ch, &req, &r, &err) != 0)
			return rpc_error(&err);
		if (c->json) {
			printf("{\"value\":");
			json_str(r->value);
			printf(",\"source\":\"%s\",\"revision\":%" PRId64 "}\n",
			       r->source == COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_OVERRIDE
			               ? "override"
			               : "default",
			       r->revision);
		} else {
			puts(r->value);
		}
		size_t n = strlen(r->value);
		memset(r->value, 0, n);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return 0;
	}
	return usage_error("secrets %s: wrong verb or arguments", verb);
}

int main(int argc, char **argv)
{
	const char *addr = getenv("COFFER_ADDR");
	const char *token = getenv("COFFER_TOKEN");
	const char *ca = getenv("COFFER_CA_FILE");
	int timeout_ms = 30000;
	struct cli c = {0};
	char *pos[32];
	int n_pos = 0;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strncmp(a, "--", 2) != 0) {
			if (n_pos == 32)
				return usage_error("too many arguments");
			pos[n_pos++] = a;
			continue;
		}
		char *eq = strchr(a, '=');
		const char *value = NULL;
		if (eq) {
			*eq = '\0';
			value = eq + 1;
		} else if (is_flag(a)) {
			value = "";
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			return usage_error("%s needs a value", a);
		}
		if (strcmp(a, "--addr") == 0)
			addr = value;
		else if (strcmp(a, "--token") == 0)
			token = value;
		else if (strcmp(a, "--ca-file") == 0)
			ca = value;
		else if (strcmp(a, "--timeout-ms") == 0)
			timeout_ms = atoi(value);
		else if (strcmp(a, "--json") == 0)
			c.json = true;
		else if (c.n_opts < 16)
			c.opts[c.n_opts++] = (struct opt){a, value};
		else
			return usage_error("too many options");
	}
	if (n_pos < 2) {
		usage(stderr);
		return 2;
	}
	coffer_channel_options o = {.target = addr && *addr ? addr : "127.0.0.1:50051",
	                            .token = token,
	                            .ca_file = ca,
	                            .timeout_ms = timeout_ms};
	coffer_error err;
	if (coffer_channel_new(&o, &c.ch, &err) != 0)
		return rpc_error(&err);
	c.argc = n_pos - 2;
	c.argv = pos + 2;
	int rc;
	if (strcmp(pos[0], "projects") == 0)
		rc = projects_cmd(&c, pos[1]);
	else if (strcmp(pos[0], "secrets") == 0)
		rc = secrets_cmd(&c, pos[1]);
	else
		rc = usage_error("unknown command group '%s'", pos[0]);
	coffer_channel_free(c.ch);
	return rc;
}
