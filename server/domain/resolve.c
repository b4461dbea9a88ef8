/* resolve.c - the ResolveSecrets transaction (see resolve.h); the rules are in resolve_rules.c. */
#include "resolve.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "resolve_rules.h"
#include "store.h"
#include "value.h"

/* How often a resolve waiting for min_revision looks again. */
#define MIN_REVISION_POLL_MS 50

struct resolve_tx {
	struct session *ss;                /* in */
	const struct resolve_request *req; /* in */
	struct resolved *out;              /* out */
	bool behind;                       /* out: min_revision not reached yet */
};

/* Picks the winning row of each secret, keeps the names asked for, and opens them. */
static int select_and_open(struct resolve_tx *t, int64_t pid, struct cof_err *e)
{
	struct resolved *out = t->out;
	const struct resolve_request *req = t->req;
	size_t n = out->n_rows;
	struct resolve_candidate *cand = calloc(n + 1, sizeof(*cand));
	size_t *win = calloc(n + 1, sizeof(*win));
	const char **names = calloc(n + 1, sizeof(*names));
	size_t *take = calloc(n + 1, sizeof(*take));
	out->missing = calloc(req->n_names + 1, sizeof(*out->missing));
	out->secrets = calloc(n + 1, sizeof(*out->secrets));
	int rc = 0;
	if (!cand || !win || !names || !take || !out->missing || !out->secrets) {
		rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		cand[i] = (struct resolve_candidate){out->rows[i].secret,
		                                     out->rows[i].environment_id != 0};
	size_t n_win = resolve_pick(cand, n, win);
	for (size_t i = 0; i < n_win; i++)
		names[i] = out->rows[win[i]].secret;
	size_t n_take = 0;
	if (resolve_select(names, n_win, req->names, req->n_names, take, &n_take, out->missing,
	                   &out->n_missing) != 0) {
		rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < n_take && rc == 0; k++) {
		const struct store_sealed *row = &out->rows[win[take[k]]];
		struct resolved_secret *sec = &out->secrets[out->n_secrets];
		if ((rc = value_open(t->ss, pid, row, &sec->value, &sec->len, e)))
			break;
		sec->name = row->secret;
		sec->visibility = row->visibility;
		sec->source = row->environment_id ? SOURCE_OVERRIDE : SOURCE_DEFAULT;
		sec->revision = row->valid_from;
		out->n_secrets++;
	}
out:
	free(cand);
	free(win);
	free(names);
	free(take);
	return rc;
}

static int resolve_body(struct store *s, void *arg, struct cof_err *e)
{
	struct resolve_tx *t = arg;
	const struct resolve_request *req = t->req;
	struct resolved *out = t->out;
	struct store_project p;
	resolve_clear(out);
	t->behind = false;
	int rc = store_project_get(s, req->project, &p, e);
	if (rc)
		return rc;
	if (req->min_revision > p.revision) {
		t->behind = true;
		return cof_err_set(e, COF_EUNAVAIL,
		                   "project \"%s\" has not reached revision %" PRId64
		                   " (it is at %" PRId64 ")",
		                   req->project, req->min_revision, p.revision);
	}
	if (req->at_revision > p.revision)
		return cof_err_set(e, COF_ERANGE,
		                   "revision %" PRId64 " is beyond the current revision %" PRId64
		                   " of project \"%s\"",
		                   req->at_revision, p.revision, req->project);
	int64_t at = req->at_revision ? req->at_revision : p.revision;
	out->revision = at;
	if (req->at_revision == 0 && req->known_revision == p.revision) {
		out->not_modified = true;
		return 0;
	}
	int64_t env_id = 0;
	if ((rc = store_environment_at(s, p.id, req->environment, at, &env_id, e))) {
		if (rc == COF_ENOTFOUND)
			cof_err_set(e, rc, "environment \"%s\" not found in project \"%s\"%s",
			            req->environment, req->project,
			            req->at_revision ? " at that revision" : "");
		return rc;
	}
	if ((rc = store_resolve_rows(s, p.id, env_id, req->version, at, at == p.revision,
	                             &out->rows, &out->n_rows, e)))
		return rc;
	return select_and_open(t, p.id, e);
}

static int64_t elapsed_ms(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - since->tv_sec) * 1000 +
	       (now.tv_nsec - since->tv_nsec) / 1000000;
}

int resolve_secrets(struct session *ss, const struct resolve_request *req, struct resolved *out,
                    struct cof_err *e)
{
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	memset(out, 0, sizeof(*out));
	struct resolve_tx t = {ss, req, out, false};
	for (;;) {
		int rc = store_tx(ss->store, STORE_TX_SNAPSHOT, resolve_body, &t, NULL, e);
		if (rc)
			resolve_clear(out);
		if (!t.behind || elapsed_ms(&start) + MIN_REVISION_POLL_MS > req->wait_ms)
			return rc;
		nanosleep(&(struct timespec){0, MIN_REVISION_POLL_MS * 1000000L}, NULL);
	}
}

void resolve_clear(struct resolved *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; r->secrets && i < r->n_secrets; i++)
		value_free(r->secrets[i].value, r->secrets[i].len);
	free(r->secrets);
	free(r->missing);
	store_sealed_free(r->rows, r->n_rows);
	memset(r, 0, sizeof(*r));
}
