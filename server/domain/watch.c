/* watch.c - watcher states and their differences (see watch.h). */
#include "watch.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "resolve.h"
#include "session_internal.h"
#include "store.h"

struct watch_state *watch_state_ref(struct watch_state *st)
{
	atomic_fetch_add(&st->refs, 1);
	return st;
}

void watch_state_unref(struct watch_state *st)
{
	if (st && atomic_fetch_sub(&st->refs, 1) == 1)
		free(st);
}

/* The identities of a set's rows (no value, sealed or not), in one allocation. */
static struct watch_state *state_of(const struct cached_rows *set)
{
	size_t names = 0;
	for (size_t i = 0; i < set->n; i++)
		names += strlen(set->rows[i].name) + 1;
	size_t bytes = sizeof(struct watch_state) + set->n * sizeof(struct watch_entry) + names;
	struct watch_state *st = malloc(bytes);
	if (st == NULL)
		return NULL;
	atomic_init(&st->refs, 1);
	st->project_id = set->project_id;
	st->revision = set->revision;
	st->n = set->n;
	st->bytes = bytes;
	st->entries = (struct watch_entry *)(st + 1);
	char *room = (char *)(st->entries + set->n);
	for (size_t i = 0; i < set->n; i++) {
		const struct cached_row *r = &set->rows[i];
		size_t len = strlen(r->name) + 1;
		memcpy(room, r->name, len);
		st->entries[i] =
		        (struct watch_entry){room,          r->secret_id, r->environment_id,
		                             r->valid_from, r->version,   r->visibility};
		room += len;
	}
	return st;
}

/* *out = the identities of set (which is released); COF_EINTERNAL on OOM. */
static int keep_identities(struct cached_rows *set, struct watch_state **out, struct cof_err *e)
{
	*out = set ? state_of(set) : NULL;
	cached_rows_unref(set);
	return *out ? 0 : cof_err_set(e, COF_EINTERNAL, "out of memory");
}

int watch_now(struct session *ss, const char *project, const char *environment, int version,
              struct watch_state **out, struct cof_err *e)
{
	*out = NULL;
	struct cached_rows *set = NULL;
	int rc = resolve_state(ss, project, environment, version, &set, e);
	return rc ? rc : keep_identities(set, out, e);
}

struct since_tx {
	const char *project, *environment; /* what it is about */
	int version;                       /* draft or live */
	int64_t from;                      /* the revision the client knows */
	struct cached_rows *then, *now;    /* the rows at from, and now */
	char **touched;                    /* the names that changed since from (malloc'd) */
	size_t n_touched;                  /* entries in touched */
};

static void since_clear(struct since_tx *t)
{
	cached_rows_unref(t->then);
	cached_rows_unref(t->now);
	store_names_free(t->touched, t->n_touched);
	t->then = t->now = NULL;
	t->touched = NULL;
	t->n_touched = 0;
}

/* The winning rows of env_id at `at` (current: the project's revision) as a set. */
static int state_at(struct store *s, int64_t pid, int64_t env_id, int version, int64_t at,
                    bool current, struct cached_rows **out, struct cof_err *e)
{
	struct store_sealed *rows = NULL;
	size_t n = 0;
	int rc = store_resolve_rows(s, pid, env_id, version, at, current, &rows, &n, e);
	if (rc == 0)
		rc = resolve_make_set(rows, n, pid, at, env_id, out, e);
	store_sealed_free(rows, n);
	return rc;
}

static int since_body(struct store *s, void *arg, struct cof_err *e)
{
	struct since_tx *t = arg;
	since_clear(t);
	struct store_project p;
	int rc = store_project_get(s, t->project, &p, e);
	if (rc)
		return rc;
	if (t->from > p.revision)
		return cof_err_set(e, COF_EPRECOND,
		                   "revision %" PRId64 " is beyond the project's (%" PRId64 ")",
		                   t->from, p.revision);
	int64_t env_then = 0, env_now = 0;
	if ((rc = store_environment_at(s, p.id, t->environment, p.revision, &env_now, e)))
		return rc;
	rc = store_environment_at(s, p.id, t->environment, t->from, &env_then, e);
	if (rc == COF_ENOTFOUND || (rc == 0 && env_then != env_now))
		return cof_err_set(e, COF_EPRECOND, "the environment is not the one it was then");
	if (rc || (rc = state_at(s, p.id, env_then, t->version, t->from, false, &t->then, e)) ||
	    (rc = state_at(s, p.id, env_now, t->version, p.revision, true, &t->now, e)))
		return rc;
	return store_secrets_touched(s, p.id, t->from, &t->touched, &t->n_touched, e);
}

int watch_since(struct session *ss, const char *project, const char *environment, int version,
                int64_t from, struct watch_state **then, struct watch_state **now, char ***touched,
                size_t *n_touched, struct cof_err *e)
{
	*then = *now = NULL;
	*touched = NULL;
	*n_touched = 0;
	if (ss->store == NULL)
		return cof_err_set(e, COF_EWOULDBLOCK, "history is read from the database");
	struct since_tx t = {project, environment, version, from, NULL, NULL, NULL, 0};
	int rc = session_tx(ss, STORE_TX_SNAPSHOT, since_body, &t, NULL, e);
	if (rc) {
		since_clear(&t);
		return rc;
	}
	*touched = t.touched;
	*n_touched = t.n_touched;
	rc = keep_identities(t.then, then, e);
	int rc_now = keep_identities(t.now, now, e);
	if (rc || (rc = rc_now)) {
		watch_state_unref(*then);
		watch_state_unref(*now);
		*then = *now = NULL;
		watch_names_free(*touched, *n_touched);
		*touched = NULL;
		*n_touched = 0;
	}
	return rc;
}

/* The entry of name in st, or NULL (binary search: entries are sorted by strcmp). */
static const struct watch_entry *find(const struct watch_state *st, const char *name)
{
	size_t lo = 0, hi = st ? st->n : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(st->entries[mid].name, name);
		if (c == 0)
			return &st->entries[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool same(const struct watch_entry *x, const struct watch_entry *y)
{
	return x->secret_id == y->secret_id && x->environment_id == y->environment_id &&
	       x->version == y->version && x->valid_from == y->valid_from &&
	       x->visibility == y->visibility;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool wanted(const char *name, const char *const *filter, size_t n_filter)
{
	if (n_filter == 0)
		return true;
	for (size_t i = 0; i < n_filter; i++)
		if (strcmp(filter[i], name) == 0)
			return true;
	return false;
}

int watch_diff(const struct watch_state *a, const struct watch_state *b, char *const *extra,
               size_t n_extra, const char *const *filter, size_t n_filter, const char ***out,
               size_t *n)
{
	size_t na = a ? a->n : 0, nb = b ? b->n : 0;
	const char **names = calloc(na + nb + n_extra + 1, sizeof(*names));
	*out = NULL;
	*n = 0;
	if (names == NULL)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < na; i++) {
		const struct watch_entry *other = find(b, a->entries[i].name);
		if (other == NULL || !same(&a->entries[i], other))
			names[k++] = a->entries[i].name;
	}
	for (size_t i = 0; i < nb; i++)
		if (find(a, b->entries[i].name) == NULL)
			names[k++] = b->entries[i].name;
	for (size_t i = 0; i < n_extra; i++)
		if (find(a, extra[i]) || find(b, extra[i]))
			names[k++] = extra[i];
	qsort(names, k, sizeof(*names), cmp_str);
	size_t m = 0;
	for (size_t i = 0; i < k; i++)
		if ((m == 0 || strcmp(names[m - 1], names[i]) != 0) &&
		    wanted(names[i], filter, n_filter))
			names[m++] = names[i];
	*out = names;
	*n = m;
	return 0;
}

void watch_names_free(char **names, size_t n)
{
	store_names_free(names, n);
}
