/*
 * target.c - what a runtime command resolves, and how: from --project, --env and --version, else
 * from COFFER_PROJECT, COFFER_ENV and COFFER_VERSION, else from the runtime token's own scope when
 * it names exactly one project, environment and version (Access/WhoAmI): a pod then needs only
 * its token. And the fallback snapshot's options, and the resolve through it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* What a runtime command resolves, from its flags, the environment or the token's scope: 0, or
 * the status to exit with. */
int cli_target(struct cli *c, struct cli_target *t)
{
	memset(t, 0, sizeof(*t));
	const char *p = cli_opt(c, "--project"), *e = cli_opt(c, "--env"),
	           *v = cli_opt(c, "--version");
	if (p == NULL)
		p = getenv("COFFER_PROJECT");
	if (e == NULL)
		e = getenv("COFFER_ENV");
	if (v == NULL)
		v = getenv("COFFER_VERSION");
	if (v && cli_version(v) == 0)
		return cli_usage_error(c, "--version (or COFFER_VERSION) must be draft or live");
	if (!(p && *p && e && *e && v && *v)) {
		/* Ask the token what it may resolve (only when something is missing, and never
		 * with --fallback-only: no call then). */
		Coffer__V1__WhoAmIRequest req = COFFER__V1__WHO_AM_IREQUEST__INIT;
		Coffer__V1__Token *tok = NULL;
		coffer_error err;
		if (cli_opt(c, "--fallback-only") == NULL &&
		    coffer_v1_access_who_am_i(c->ch, &req, &tok, &err) == 0) {
			if (tok->role == COFFER__V1__ROLE__ROLE_RUNTIME && *tok->project) {
				if (!(p && *p))
					snprintf(t->project_buf, sizeof(t->project_buf), "%s",
					         tok->project);
				if (!(e && *e) && tok->n_environments == 1)
					snprintf(t->env_buf, sizeof(t->env_buf), "%s",
					         tok->environments[0]);
				if (!(v && *v) && tok->n_versions == 1)
					t->version = tok->versions[0];
			}
			protobuf_c_message_free_unpacked(&tok->base, NULL);
		}
	}
	t->project = p && *p ? p : t->project_buf[0] ? t->project_buf : NULL;
	t->env = e && *e ? e : t->env_buf[0] ? t->env_buf : NULL;
	if (v && *v)
		t->version = cli_version(v);
	/* cofferd could not say (it cannot be reached): the fallback snapshot says what it holds,
	 * and opening it checks that again. */
	coffer_fallback_info info;
	coffer_error ferr;
	if ((t->project == NULL || t->env == NULL || t->version == 0) && cli_opt(c, "--fallback") &&
	    coffer_fallback_describe(cli_opt(c, "--fallback"), &info, &ferr) == 0) {
		if (t->project == NULL) {
			snprintf(t->project_buf, sizeof(t->project_buf), "%s", info.project);
			t->project = t->project_buf;
		}
		if (t->env == NULL) {
			snprintf(t->env_buf, sizeof(t->env_buf), "%s", info.environment);
			t->env = t->env_buf;
		}
		if (t->version == 0)
			t->version = info.version;
	}
	if (t->project == NULL || t->env == NULL || t->version == 0)
		return cli_usage_error(c, "--project, --env and --version draft|live are required "
		                          "(or COFFER_PROJECT, COFFER_ENV and COFFER_VERSION, or a "
		                          "runtime token whose scope names one of each)");
	return 0;
}

/* Reads the fallback options into fb (path NULL: none); 0 or a usage error's status. */
int cli_fallback(struct cli *c, coffer_fallback *fb)
{
	memset(fb, 0, sizeof(*fb));
	fb->path = cli_opt(c, "--fallback");
	fb->passphrase_file = cli_opt(c, "--passphrase-file");
	fb->only = cli_opt(c, "--fallback-only") != NULL;
	const char *age = cli_opt(c, "--fallback-max-age");
	if (age && !cli_duration_ms(age, &fb->max_age_seconds))
		return cli_usage_error(c, "--fallback-max-age takes a duration (90s, 10m, 24h)");
	fb->max_age_seconds /= 1000;
	if (fb->path == NULL && (fb->only || fb->passphrase_file || age))
		return cli_usage_error(c, "--fallback-only, --passphrase-file and "
		                          "--fallback-max-age go with --fallback FILE");
	return 0;
}

/* Resolves t, through the fallback snapshot when one is given: 0, or the status to exit with. */
int cli_resolve(struct cli *c, const struct cli_target *t, const coffer_fallback *fb,
                coffer_snapshot **snap)
{
	coffer_error err;
	int from_fallback = 0;
	if (coffer_resolve_fallback(c->client, t->project, t->env, (coffer_version)t->version,
	                            fb->path ? fb : NULL, snap, &from_fallback, &err) != 0)
		return cli_rpc_error(&err);
	if (from_fallback) {
		char when[32];
		time_t at = (time_t)coffer_snapshot_time(*snap);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&at));
		fprintf(stderr,
		        "coffer: cofferd %s: using the fallback snapshot %s (revision %lld, "
		        "written "
		        "%s)\n",
		        fb->only ? "not asked (--fallback-only)" : "cannot be reached", fb->path,
		        (long long)coffer_snapshot_revision(*snap), when);
	}
	return 0;
}
