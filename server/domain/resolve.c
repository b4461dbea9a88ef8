/* resolve.c - the ResolveSecrets transaction and its cache (see resolve.h); the rules are in
 * resolve_rules.c. */
#include "resolve.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"
#include "resolve_rules.h"
#include "session_internal.h"
#include "store.h"
#include "value.h"

struct resolve_tx {
	const struct resolve_request *req; /* the request */
	struct resolved *out;              /* out: revision, not_modified, behind, project_id */
	struct cached_rows *set;           /* out: the rows read */
};

/* The winning row of each secret among rows (sorted by name, default before override), as a set
 * of its own: what the cache keeps and the calls read. */
int resolve_make_set(const struct store_sealed *rows, size_t n, int64_t project_id,
                     int64_t revision, int64_t env_id, struct cached_rows **out, struct cof_err *e)
{
	*out = NULL;
	struct resolve_candidate *cand = calloc(n + 1, sizeof(*cand));
	size_t *win = calloc(n + 1, sizeof(*win));
	if (cand == NULL || win == NULL) {
		free(cand);
		free(win);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		cand[i] = (struct resolve_candidate){rows[i].secret, rows[i].environment_id != 0};
	size_t n_win = resolve_pick(cand, n, win);
	size_t names = 0, blobs = 0;
	for (size_t k = 0; k < n_win; k++) {
		names += strlen(rows[win[k]].secret) + 1;
		blobs += rows[win[k]].sealed_len;
	}
	struct cached_rows *set = cached_rows_new(n_win, names, blobs);
	if (set == NULL) {
		free(cand);
		free(win);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	set->project_id = project_id;
	set->revision = revision;
	set->environment_id = env_id;
	uint8_t *room = cached_rows_room(set);
	for (size_t k = 0; k < n_win; k++) {
		const struct store_sealed *r = &rows[win[k]];
		struct cached_row *x = &set->rows[k];
		size_t len = strlen(r->secret) + 1;
		memcpy(room, r->secret, len);
		x->name = set->names[k] = (const char *)room;
		room += len;
		memcpy(room, r->sealed, r->sealed_len);
		x->sealed = room;
		x->sealed_len = r->sealed_len;
		room += r->sealed_len;
		x->secret_id = r->secret_id;
		x->visibility = r->visibility;
		x->environment_id = r->environment_id;
		x->version = r->version;
		x->valid_from = r->valid_from;
	}
	free(cand);
	free(win);
	*out = set;
	return 0;
}

static int resolve_body(struct store *s, void *arg, struct cof_err *e)
{
	struct resolve_tx *t = arg;
	const struct resolve_request *req = t->req;
	struct resolved *out = t->out;
	struct store_project p;
	cached_rows_unref(t->set);
	t->set = NULL;
	out->behind = out->not_modified = false;
	int rc = store_project_get(s, req->project, &p, e);
	if (rc)
		return rc;
	out->project_id = p.id;
	if (req->min_revision > p.revision) {
		out->behind = true;
		out->revision = p.revision;
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
	struct store_sealed *rows = NULL;
	size_t n = 0;
	rc = store_resolve_rows(s, p.id, env_id, req->version, at, at == p.revision, &rows, &n, e);
	if (rc == 0)
		rc = resolve_make_set(rows, n, p.id, at, env_id, &t->set, e);
	if (rc == 0)
		t->set->version = req->version;
	store_sealed_free(rows, n);
	return rc;
}

/* The names asked for, opened, into out (which holds set). */
static int select_and_open(struct session *ss, const struct resolve_request *req,
                           const struct cached_rows *set, struct resolved *out, struct cof_err *e)
{
	size_t n = set->n;
	out->values_owned = req->alloc == NULL;
	size_t *take = calloc(n + 1, sizeof(*take));
	out->missing = calloc(req->n_names + 1, sizeof(*out->missing));
	out->secrets = calloc(n + 1, sizeof(*out->secrets));
	if (!take || !out->missing || !out->secrets) {
		free(take);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	size_t n_take = 0;
	int rc = 0;
	if (req->n_names == 0) {
		for (size_t i = 0; i < n; i++)
			take[i] = i;
		n_take = n;
	} else if (resolve_select(set->names, n, req->names, req->n_names, take, &n_take,
	                          out->missing, &out->n_missing) != 0) {
		rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	for (size_t k = 0; k < n_take && rc == 0; k++) {
		const struct cached_row *row = &set->rows[take[k]];
		struct resolved_secret *sec = &out->secrets[out->n_secrets];
		struct value_at at = {.project_id = set->project_id,
		                      .secret_id = row->secret_id,
		                      .environment_id = row->environment_id,
		                      .version = row->version,
		                      .valid_from = row->valid_from,
		                      .name = row->name,
		                      .sealed = row->sealed,
		                      .sealed_len = row->sealed_len,
		                      .alloc = req->alloc,
		                      .alloc_arg = req->alloc_arg};
		if ((rc = value_open_at(ss, &at, &sec->value, &sec->len, e)))
			break;
		sec->name = row->name;
		sec->visibility = row->visibility;
		sec->source = row->environment_id ? SOURCE_OVERRIDE : SOURCE_DEFAULT;
		sec->revision = row->valid_from;
		out->n_secrets++;
	}
	free(take);
	return rc;
}

/* What a kept answer is bound to: its set's identity. */
static size_t answer_ad(const struct cached_rows *set, uint8_t *ad, size_t cap)
{
	int n = snprintf((char *)ad, cap,
	                 "coffer.answer.v1:%" PRId64 ":%" PRId64 ":%d:%" PRId64 ":%zu",
	                 set->project_id, set->environment_id, set->version, set->revision, set->n);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Whether a resolve may answer with, or keep, the whole answer of its set. */
static bool whole_answer(const struct resolve_request *req)
{
	return req->kept_answers && req->n_names == 0 && req->at_revision == 0;
}

/* The answer kept for set, opened into out: 1, 0 when none is kept, or an error. */
static int open_kept(struct session *ss, const struct cached_rows *set, struct resolved *out,
                     struct cof_err *e)
{
	const struct kept_answer *k = atomic_load(&set->answer);
	if (k == NULL)
		return 0;
	uint8_t ad[128];
	size_t ad_len = answer_ad(set, ad, sizeof(ad));
	int rc = crypt_answer_open(ss->kr, ad, ad_len, k->sealed, k->len, &out->answer,
	                           &out->answer_len, e);
	if (rc)
		return rc; /* memory was altered: fail closed, as for a stored value */
	cache_count_answer(session_cache(ss));
	return 1;
}

void resolve_keep_answer(struct session *ss, const struct resolved *r, const uint8_t *packed,
                         size_t len)
{
	struct cached_rows *set = r->set;
	if (!r->keep_answer || set == NULL || atomic_load(&set->answer) != NULL)
		return;
	uint8_t ad[128];
	size_t ad_len = answer_ad(set, ad, sizeof(ad));
	struct kept_answer *k = malloc(sizeof(*k) + len + CRYPT_ANSWER_OVERHEAD);
	if (k == NULL || ad_len == 0 ||
	    crypt_answer_seal(ss->kr, ad, ad_len, packed, len, k->sealed) != 0) {
		free(k);
		return;
	}
	k->len = len + CRYPT_ANSWER_OVERHEAD;
	struct kept_answer *none = NULL;
	if (!atomic_compare_exchange_strong(&set->answer, &none, k))
		free(k); /* another call kept the same answer first */
}

/* From the cache: 1 served, 0 not held (or not fresh enough for min_revision), else an error. */
static int from_cache(struct session *ss, struct cache *cache, const struct resolve_request *req,
                      struct resolved *out, struct cof_err *e)
{
	if (cache == NULL || req->at_revision != 0)
		return 0;
	struct cached_rows *set =
	        cache_rows_get(cache, req->project, req->environment, req->version);
	if (set == NULL)
		return 0;
	if (set->revision < req->min_revision) {
		cached_rows_unref(set);
		return 0;
	}
	out->set = set;
	out->project_id = set->project_id;
	out->revision = set->revision;
	if (req->known_revision == set->revision) {
		out->not_modified = true;
		return 1;
	}
	if (whole_answer(req)) {
		int rc = open_kept(ss, set, out, e);
		if (rc != 0)
			return rc;
		out->keep_answer = true;
	}
	int rc = select_and_open(ss, req, set, out, e);
	return rc ? rc : 1;
}

/* Reads the rows of req's (environment, version) in one snapshot into *set, filling out's
 * metadata, and offers them to the cache unless they are of a past revision. The generation is
 * taken before the snapshot: rows a newer write replaced while they were read are refused by the
 * cache. */
static int read_through(struct session *ss, const struct resolve_request *req, struct resolved *out,
                        struct cached_rows **set, struct cof_err *e)
{
	struct cache *cache = session_cache(ss);
	uint64_t generation = cache ? cache_generation(cache) : 0;
	struct resolve_tx t = {req, out, NULL};
	int rc = session_tx(ss, STORE_TX_SNAPSHOT, resolve_body, &t, NULL, e);
	if (rc == 0 && t.set && cache && req->at_revision == 0)
		out->keep_answer = cache_rows_put(cache, generation, req->project, req->environment,
		                                  req->version, t.set) &&
		                   whole_answer(req);
	if (rc != 0) {
		cached_rows_unref(t.set);
		t.set = NULL;
	}
	*set = t.set;
	return rc;
}

int resolve_secrets(struct session *ss, const struct resolve_request *req, struct resolved *out,
                    struct cof_err *e)
{
	memset(out, 0, sizeof(*out));
	struct cache *cache = session_cache(ss);
	int rc = from_cache(ss, cache, req, out, e);
	if (rc == 1)
		return 0;
	if (rc != 0 || ss->store == NULL) {
		int64_t pid = out->project_id;
		resolve_clear(out);
		out->project_id = pid;
		return rc ? rc : cof_err_set(e, COF_EWOULDBLOCK, "not in the cache");
	}
	struct cached_rows *set = NULL;
	rc = read_through(ss, req, out, &set, e);
	if (rc == 0 && set) {
		out->set = set;
		rc = select_and_open(ss, req, out->set, out, e);
	}
	if (rc == 0 && out->not_modified)
		out->keep_answer = false;
	if (rc) {
		struct resolved keep = {.project_id = out->project_id,
		                        .behind = out->behind,
		                        .revision = out->revision};
		resolve_clear(out);
		*out = keep;
	}
	return rc;
}

int resolve_state(struct session *ss, const char *project, const char *environment, int version,
                  struct cached_rows **out, struct cof_err *e)
{
	*out = NULL;
	struct cache *cache = session_cache(ss);
	if (cache && (*out = cache_rows_get(cache, project, environment, version)) != NULL)
		return 0;
	if (ss->store == NULL)
		return cof_err_set(e, COF_EWOULDBLOCK, "not in the cache");
	struct resolve_request req = {
	        .project = project, .environment = environment, .version = version};
	struct resolved meta;
	memset(&meta, 0, sizeof(meta));
	return read_through(ss, &req, &meta, out, e);
}

void resolve_clear(struct resolved *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; r->values_owned && r->secrets && i < r->n_secrets; i++)
		value_free(r->secrets[i].value, r->secrets[i].len);
	free(r->secrets);
	free(r->missing);
	if (r->answer) {
		crypt_wipe(r->answer, r->answer_len);
		free(r->answer);
	}
	cached_rows_unref(r->set);
	memset(r, 0, sizeof(*r));
}
