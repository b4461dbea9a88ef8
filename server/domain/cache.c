/* cache.c - resolve rows and tokens kept between calls (see cache.h). */
#include "cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"
#include "hash.h"

#define SET_CHAINS   8192
#define REV_CHAINS   4096
#define TOKEN_CHAINS 1024
#define MAX_TOKENS   10000
#define KEY_MAX      (2 * LIMIT_NAME_BUF + 8)

struct set_entry {
	struct hash_node node;   /* in sets, by key */
	char key[KEY_MAX];       /* "project/environment/version" */
	struct cached_rows *set; /* the rows (one reference) */
};

struct rev_entry {
	struct hash_node node; /* in revs, by project_id */
	int64_t project_id;    /* the project */
	int64_t revision;      /* the newest revision announced; INT64_MAX: deleted */
};

struct token_entry {
	struct hash_node node;                /* in tokens, by hash */
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES]; /* keyed hash of the bearer secret */
	struct token t;                       /* what it authenticates */
};

struct cache {
	pthread_mutex_t mu; /* guards everything */
	bool enabled;       /* serving and keeping */
	/* Readers' snapshots are matched against it. It starts at 2 and grows by 2 (odd numbers are
	 * never handed out) so that it is never 0, which cache_generation answers while the cache
	 * is off: an offer read then can never match. */
	uint64_t generation;
	size_t budget, bytes; /* resolve rows: limit, held */
	size_t cursor;        /* the chain of sets where eviction continues */
	struct hash sets;     /* resolve rows (struct set_entry) by key */
	struct hash revs;     /* announced revisions (struct rev_entry) by project */
	struct hash tokens;   /* tokens (struct token_entry) by the hash of their secret */
	bool keyring_stale;   /* the keyring changed: read it again */
	uint64_t hits, misses, token_hits, token_misses;
	atomic_uint_fast64_t answer_hits; /* counted without the lock */
};

/* ---- the rows ---- */

struct cached_rows *cached_rows_new(size_t n, size_t names_bytes, size_t blob_bytes)
{
	size_t size = sizeof(struct cached_rows) + n * sizeof(struct cached_row) +
	              n * sizeof(char *) + names_bytes + blob_bytes;
	struct cached_rows *set = calloc(1, size);
	if (set == NULL)
		return NULL;
	atomic_init(&set->refs, 1);
	set->n = n;
	set->rows = (struct cached_row *)(set + 1);
	set->names = (const char **)(set->rows + n);
	/* The answer kept beside the rows holds the same names and values, a few bytes of framing
	 * each, sealed: it is charged now, so that the budget bounds both. */
	set->bytes = size + names_bytes + blob_bytes + n * 16 + 64;
	return set;
}

uint8_t *cached_rows_room(struct cached_rows *set)
{
	return (uint8_t *)(set->names + set->n);
}

struct cached_rows *cached_rows_ref(struct cached_rows *set)
{
	atomic_fetch_add(&set->refs, 1);
	return set;
}

void cached_rows_unref(struct cached_rows *set)
{
	if (set != NULL && atomic_fetch_sub(&set->refs, 1) == 1) {
		free(atomic_load(&set->answer));
		free(set);
	}
}

/* ---- keys ---- */

static int make_key(char *key, const char *project, const char *env, int version)
{
	int n = snprintf(key, KEY_MAX, "%s/%s/%d", project, env, version);
	return n > 0 && n < KEY_MAX ? n : -1;
}

/* ---- life ---- */

int cache_new(size_t budget_bytes, struct cache **out)
{
	*out = NULL;
	struct cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -1;
	if (hash_init(&c->sets, SET_CHAINS) != 0 || hash_init(&c->revs, REV_CHAINS) != 0 ||
	    hash_init(&c->tokens, TOKEN_CHAINS) != 0) {
		hash_destroy(&c->sets);
		hash_destroy(&c->revs);
		free(c);
		return -1;
	}
	pthread_mutex_init(&c->mu, NULL);
	c->budget = budget_bytes;
	c->generation = 2;
	*out = c;
	return 0;
}

/* The table's removals, each freeing what it removes (hash_sweep's drop): of every entry, or of
 * the entries a test picks. */
static bool drop_set(struct hash_node *n, void *arg)
{
	struct cache *c = arg;
	struct set_entry *s = hash_entry(n, struct set_entry, node);
	c->bytes -= s->set->bytes;
	cached_rows_unref(s->set);
	free(s);
	return true;
}

static bool drop_rev(struct hash_node *n, void *arg)
{
	(void)arg;
	free(hash_entry(n, struct rev_entry, node));
	return true;
}

static bool drop_token(struct hash_node *n, void *arg)
{
	(void)arg;
	struct token_entry *t = hash_entry(n, struct token_entry, node);
	crypt_wipe(t, sizeof(*t));
	free(t);
	return true;
}

/* With the lock held: drops every resolve set and token, and the announced revisions too. */
static void drop_all(struct cache *c, bool revs)
{
	hash_sweep(&c->sets, 0, drop_set, NULL, c);
	if (revs)
		hash_sweep(&c->revs, 0, drop_rev, NULL, c);
	hash_sweep(&c->tokens, 0, drop_token, NULL, c);
}

void cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	drop_all(c, true);
	hash_destroy(&c->sets);
	hash_destroy(&c->revs);
	hash_destroy(&c->tokens);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

uint64_t cache_generation(struct cache *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t e = c->enabled ? c->generation : 0;
	pthread_mutex_unlock(&c->mu);
	return e;
}

/* Empties the cache (announced revisions too when all) and starts a new generation; enabled says
 * whether it serves afterwards (-1: as before); keyring whether the keyring must be read again. */
static void start_over(struct cache *c, bool all, int enabled, bool keyring)
{
	pthread_mutex_lock(&c->mu);
	drop_all(c, all);
	c->generation += 2;
	if (enabled >= 0)
		c->enabled = enabled;
	c->keyring_stale = c->keyring_stale || keyring;
	pthread_mutex_unlock(&c->mu);
}

void cache_enable(struct cache *c)
{
	start_over(c, true, 1, false);
}

void cache_disable(struct cache *c)
{
	start_over(c, true, 0, false);
}

/* ---- invalidation ---- */

/* What a sweep of invalidation drops: sets of a project older than a revision, tokens that are
 * not admins', tokens by id. */
struct stale {
	struct cache *c;    /* whose */
	int64_t project_id; /* sets of this project */
	int64_t revision;   /* older than this */
	const char *id;     /* tokens with this id; NULL: every token but admins' */
};

static bool drop_stale_set(struct hash_node *n, void *arg)
{
	struct stale *x = arg;
	const struct set_entry *s = hash_entry(n, struct set_entry, node);
	return s->set->project_id == x->project_id && s->set->revision < x->revision &&
	       drop_set(n, x->c);
}

static bool drop_stale_token(struct hash_node *n, void *arg)
{
	struct stale *x = arg;
	const struct token_entry *t = hash_entry(n, struct token_entry, node);
	bool stale = x->id ? strcmp(t->t.id, x->id) == 0 : t->t.role != ROLE_ADMIN;
	return stale && drop_token(n, NULL);
}

/* With the lock held: the announcement of a project, made when not known yet; NULL on OOM. */
static struct rev_entry *rev_of(struct cache *c, int64_t project_id, bool make)
{
	uint64_t h = hash_u64((uint64_t)project_id);
	for (struct hash_node *n = hash_first(&c->revs, h); n; n = hash_next(n)) {
		struct rev_entry *r = hash_entry(n, struct rev_entry, node);
		if (r->project_id == project_id)
			return r;
	}
	struct rev_entry *r = make ? calloc(1, sizeof(*r)) : NULL;
	if (r != NULL) {
		r->project_id = project_id;
		hash_add(&c->revs, &r->node, h);
	}
	return r;
}

void cache_project_changed(struct cache *c, int64_t project_id, int64_t revision)
{
	int64_t rev = revision < 0 ? INT64_MAX : revision;
	pthread_mutex_lock(&c->mu);
	/* Remember the announcement: an offer read before it is refused. */
	struct rev_entry *r = rev_of(c, project_id, true);
	if (r && rev > r->revision)
		r->revision = rev;
	struct stale x = {.c = c, .project_id = project_id, .revision = rev};
	if (r == NULL) /* out of memory: forget everything rather than keep something stale */
		drop_all(c, false);
	else
		hash_sweep(&c->sets, 0, drop_stale_set, NULL, &x);
	if (revision < 0) { /* its tokens are revoked with it */
		c->generation += 2;
		hash_sweep(&c->tokens, 0, drop_stale_token, NULL, &x);
	}
	pthread_mutex_unlock(&c->mu);
}

void cache_token_changed(struct cache *c, const char *id)
{
	pthread_mutex_lock(&c->mu);
	c->generation += 2; /* a lookup that read the token before the change must not keep it */
	hash_sweep(&c->tokens, 0, drop_stale_token, NULL, &(struct stale){.c = c, .id = id});
	pthread_mutex_unlock(&c->mu);
}

void cache_keyring_changed(struct cache *c)
{
	start_over(c, false, -1, true);
}

bool cache_keyring_stale(struct cache *c)
{
	pthread_mutex_lock(&c->mu);
	bool stale = c->keyring_stale;
	c->keyring_stale = false;
	pthread_mutex_unlock(&c->mu);
	return stale;
}

/* ---- resolve rows ---- */

/* With the lock held: the set entry of key (of hash h), or NULL. */
static struct set_entry *set_of(struct cache *c, const char *key, uint64_t h)
{
	for (struct hash_node *n = hash_first(&c->sets, h); n; n = hash_next(n)) {
		struct set_entry *s = hash_entry(n, struct set_entry, node);
		if (strcmp(s->key, key) == 0)
			return s;
	}
	return NULL;
}

struct cached_rows *cache_rows_get(struct cache *c, const char *project, const char *environment,
                                   int version)
{
	char key[KEY_MAX];
	int n = make_key(key, project, environment, version);
	if (n < 0)
		return NULL;
	uint64_t h = hash_bytes(key, (size_t)n);
	struct cached_rows *found = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->enabled) {
		struct set_entry *s = set_of(c, key, h);
		if (s != NULL)
			found = cached_rows_ref(s->set);
		if (found)
			c->hits++;
		else
			c->misses++;
	}
	pthread_mutex_unlock(&c->mu);
	return found;
}

/* With the lock held: the newest revision announced for the project (0: none). */
static int64_t announced(struct cache *c, int64_t project_id)
{
	struct rev_entry *r = rev_of(c, project_id, false);
	return r ? r->revision : 0;
}

/* Eviction stops once the sets fit three quarters of the budget: a put that crosses the budget
 * does not evict again at once on the next one. */
static bool fits(void *arg)
{
	struct cache *c = arg;
	return c->bytes <= c->budget / 4 * 3;
}

/* With the lock held: drops sets, from where the last eviction stopped, until they fit. */
static void evict(struct cache *c)
{
	c->cursor = hash_sweep(&c->sets, c->cursor, drop_set, fits, c);
}

bool cache_rows_put(struct cache *c, uint64_t generation, const char *project,
                    const char *environment, int version, struct cached_rows *set)
{
	char key[KEY_MAX];
	int n = make_key(key, project, environment, version);
	/* A set larger than a quarter of the budget is not kept: one big environment must not push
	 * every other one out. */
	if (n < 0 || generation == 0 || set->bytes > c->budget / 4)
		return false;
	uint64_t h = hash_bytes(key, (size_t)n);
	pthread_mutex_lock(&c->mu);
	if (!c->enabled || generation != c->generation ||
	    set->revision < announced(c, set->project_id)) {
		pthread_mutex_unlock(&c->mu);
		return false;
	}
	struct set_entry *s = set_of(c, key, h);
	if (s != NULL) {
		/* Keep the newer of the two (a project deleted and made again starts over). */
		if (s->set->project_id == set->project_id && s->set->revision >= set->revision) {
			pthread_mutex_unlock(&c->mu);
			return false;
		}
		c->bytes -= s->set->bytes;
		cached_rows_unref(s->set);
	} else if ((s = calloc(1, sizeof(*s))) != NULL) {
		memcpy(s->key, key, (size_t)n + 1);
		hash_add(&c->sets, &s->node, h);
	}
	if (s != NULL) {
		s->set = cached_rows_ref(set);
		c->bytes += set->bytes;
		if (c->bytes > c->budget)
			evict(c);
	}
	pthread_mutex_unlock(&c->mu);
	return s != NULL;
}

/* ---- tokens ---- */

/* With the lock held: the token entry of hash (hashed: h), or NULL. */
static struct token_entry *token_of(struct cache *c, const uint8_t *hash, uint64_t h)
{
	for (struct hash_node *n = hash_first(&c->tokens, h); n; n = hash_next(n)) {
		struct token_entry *t = hash_entry(n, struct token_entry, node);
		if (memcmp(t->hash, hash, CRYPT_TOKEN_HASH_BYTES) == 0)
			return t;
	}
	return NULL;
}

bool cache_token_get(struct cache *c, const uint8_t *hash, struct token *out)
{
	uint64_t h = hash_bytes(hash, CRYPT_TOKEN_HASH_BYTES);
	bool found = false;
	pthread_mutex_lock(&c->mu);
	if (c->enabled) {
		struct token_entry *t = token_of(c, hash, h);
		if (t != NULL) {
			*out = t->t;
			found = true;
		}
		if (found)
			c->token_hits++;
		else
			c->token_misses++;
	}
	pthread_mutex_unlock(&c->mu);
	return found;
}

void cache_token_put(struct cache *c, uint64_t generation, const uint8_t *hash,
                     const struct token *t)
{
	uint64_t h = hash_bytes(hash, CRYPT_TOKEN_HASH_BYTES);
	pthread_mutex_lock(&c->mu);
	if (!c->enabled || generation != c->generation) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	struct token_entry *x = token_of(c, hash, h);
	if (x != NULL) {
		x->t = *t;
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (c->tokens.n >= MAX_TOKENS) /* rare: many live tokens on one replica; start over */
		hash_sweep(&c->tokens, 0, drop_token, NULL, NULL);
	struct token_entry *e = calloc(1, sizeof(*e));
	if (e != NULL) {
		memcpy(e->hash, hash, CRYPT_TOKEN_HASH_BYTES);
		e->t = *t;
		hash_add(&c->tokens, &e->node, h);
	}
	pthread_mutex_unlock(&c->mu);
}

void cache_count_answer(struct cache *c)
{
	atomic_fetch_add_explicit(&c->answer_hits, 1, memory_order_relaxed);
}

void cache_stats(struct cache *c, struct cache_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = (struct cache_stats){.hits = c->hits,
	                            .misses = c->misses,
	                            .token_hits = c->token_hits,
	                            .token_misses = c->token_misses,
	                            .answer_hits = atomic_load(&c->answer_hits),
	                            .sets = c->sets.n,
	                            .bytes = c->bytes,
	                            .tokens = c->tokens.n,
	                            .enabled = c->enabled};
	pthread_mutex_unlock(&c->mu);
}
