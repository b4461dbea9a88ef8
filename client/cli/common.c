/* common.c - the CLI's shared helpers: options, errors, output, values, paging. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "coffer_shared.h"

#define MAX_VALUE_BYTES 65536

const char *cli_opt(const struct cli *c, const char *name)
{
	for (int i = 0; i < c->n_opts; i++)
		if (strcmp(c->opts[i].name, name) == 0)
			return c->opts[i].value;
	return NULL;
}

int64_t cli_opt_i64(const struct cli *c, const char *name, int64_t def, bool *ok)
{
	const char *v = cli_opt(c, name);
	if (v == NULL)
		return def;
	long long n;
	if (!coffer_parse_num(v, INT64_MIN, INT64_MAX, &n)) {
		*ok = false;
		return def;
	}
	return n;
}

int cli_expected_revision(const struct cli *c, int64_t *out)
{
	bool ok = true;
	*out = cli_opt_i64(c, "--expected-revision", 0, &ok);
	return ok ? 0 : cli_usage_error(c, "--expected-revision must be a number");
}

/* The words the CLI uses for the contract's enums, by their generated names. */
static const struct {
	const char *word; /* what the CLI reads and prints */
	int value;        /* the enum value */
} versions[] = {{"draft", COFFER__V1__VERSION__VERSION_DRAFT},
                {"live", COFFER__V1__VERSION__VERSION_LIVE}},
  roles[] = {{"admin", COFFER__V1__ROLE__ROLE_ADMIN},
             {"editor", COFFER__V1__ROLE__ROLE_EDITOR},
             {"viewer", COFFER__V1__ROLE__ROLE_VIEWER},
             {"runtime", COFFER__V1__ROLE__ROLE_RUNTIME}};

int cli_version(const char *s)
{
	for (size_t i = 0; s && i < sizeof(versions) / sizeof(versions[0]); i++)
		if (strcmp(s, versions[i].word) == 0)
			return versions[i].value;
	return 0;
}

const char *cli_version_name(int version)
{
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (versions[i].value == version)
			return versions[i].word;
	return "-";
}

int cli_role(const char *s)
{
	for (size_t i = 0; s && i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(s, roles[i].word) == 0)
			return roles[i].value;
	return 0;
}

const char *cli_role_name(int role)
{
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (roles[i].value == role)
			return roles[i].word;
	return "unspecified";
}

const char *cli_visibility_name(int visibility)
{
	return visibility == COFFER__V1__VISIBILITY__VISIBILITY_RESTRICTED ? "restricted"
	                                                                   : "masked";
}

const char *cli_source_name(int source)
{
	return source == COFFER__V1__VALUE_SOURCE__VALUE_SOURCE_OVERRIDE ? "override" : "default";
}

int cli_rpc_error(const coffer_error *err)
{
	fprintf(stderr, "coffer: %s: %s\n", coffer_code_name(err->code), err->message);
	return 1;
}

void cli_json_str(const char *s)
{
	struct coffer_wbuf b = {0};
	coffer_wbuf_json(&b, s ? s : "");
	if (b.p)
		fwrite(b.p, 1, b.len, stdout);
	coffer_wbuf_free(&b);
}

void cli_time(const Google__Protobuf__Timestamp *ts, char *buf, size_t cap)
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

void cli_list_row(struct cli *c, int *printed)
{
	if (!c->list_started) {
		c->list_started = true;
		if (c->json)
			putchar('[');
		else
			puts(c->list_header);
	}
	if (c->json && (*printed)++)
		putchar(',');
}

int cli_list_all(struct cli *c, const char *header, cli_page_fn page)
{
	coffer_error err;
	char *token = strdup("");
	int printed = 0;
	c->list_header = header;
	c->list_started = false;
	while (token != NULL) {
		char *next = NULL;
		if (page(c, token, &next, &printed, &err) != 0) {
			free(token);
			if (c->list_started && c->json)
				puts("]");
			return cli_rpc_error(&err);
		}
		free(token);
		token = next && *next ? next : NULL;
		if (token == NULL)
			free(next);
	}
	if (!c->list_started && c->json)
		putchar('[');
	else if (!c->list_started)
		puts(header);
	if (c->json)
		puts("]");
	return 0;
}

int cli_done(const struct cli *c)
{
	if (c->json)
		puts("{}");
	return 0;
}

int cli_read_value(const struct cli *c, char **out)
{
	*out = NULL;
	const char *file = cli_opt(c, "--value-file");
	bool from_stdin = cli_opt(c, "--value-stdin") != NULL;
	if (!file && !from_stdin)
		return 0;
	if (file && from_stdin)
		return cli_usage_error(
		        c, "give the value with --value-stdin or --value-file, not both");
	FILE *f = from_stdin ? stdin : fopen(file, "rb");
	if (f == NULL)
		return cli_usage_error(c, "cannot read %s: %s", file, strerror(errno));
	char *buf = malloc(MAX_VALUE_BYTES + 2);
	size_t n = buf ? fread(buf, 1, MAX_VALUE_BYTES + 2, f) : 0;
	if (!from_stdin)
		fclose(f);
	if (buf == NULL)
		return cli_usage_error(c, "out of memory");
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n > MAX_VALUE_BYTES) {
		free(buf);
		return cli_usage_error(c, "the value is larger than %d bytes", MAX_VALUE_BYTES);
	}
	if (memchr(buf, '\0', n) != NULL) {
		free(buf);
		return cli_usage_error(c, "the value contains a NUL byte");
	}
	buf[n] = '\0';
	*out = buf;
	return 1;
}

void cli_free_value(char *v)
{
	if (v) {
		volatile char *p = v;
		while (*p)
			*p++ = 0;
		free(v);
	}
}

bool cli_duration_ms(const char *s, int64_t *ms)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return false;
	double scale = strcmp(end, "ms") == 0                  ? 1
	               : strcmp(end, "s") == 0 || *end == '\0' ? 1000
	               : strcmp(end, "m") == 0                 ? 60000
	               : strcmp(end, "h") == 0                 ? 3600000
	                                                       : -1;
	if (scale < 0 || v * scale > 9e15)
		return false;
	*ms = (int64_t)(v * scale);
	return true;
}

const char *cli_kind_name(int kind)
{
	return kind == COFFER__V1__CHANGE_KIND__CHANGE_KIND_ADDED     ? "added"
	       : kind == COFFER__V1__CHANGE_KIND__CHANGE_KIND_CHANGED ? "changed"
	       : kind == COFFER__V1__CHANGE_KIND__CHANGE_KIND_REMOVED ? "removed"
	                                                              : "-";
}

char **cli_split_names(const char *s, size_t *n, char **copy)
{
	*n = 0;
	if ((*copy = strdup(s ? s : "")) == NULL)
		return NULL;
	char **out = calloc(strlen(*copy) / 2 + 2, sizeof(*out));
	if (out == NULL)
		return NULL;
	for (char *save = NULL, *tok = strtok_r(*copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		out[(*n)++] = tok;
	return out;
}
