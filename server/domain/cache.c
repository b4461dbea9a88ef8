/* cache.c - resolve rows and tokens kept between calls (see cache.h). */
#include "cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"

#define SET_BUCKETS   8192 /* power of two */
#define REV_BUCKETS   4096
#define TOKEN_BUCKETS 1024
#define MAX_TOKENS    10000
#define KEY_MAX       (2 * LIMIT_NAME_BUF + 8)

struct set_entry {
	char key[KEY_MAX];       /* "project/environment/version" */
	uint32_t hash;           /* of key */
	struct cached_rows *set; /* the rows (one reference) */
	struct set_entry *next;  /* bucket chain */
};

struct rev_entry {
	int64_t project_id;     /* the project */
	int64_t revision;       /* the newest revision announced; INT64_MAX: deleted */
	struct rev_entry *next; /* bucket chain */
};

struct token_entry {
	uint8_t hash[CRYPT_TOKEN_HASH_BYTES]; /* keyed hash of the bearer secret */
	struct token t;                       /* what it authenticates */
	struct token_entry *next;             /* bucket chain */
};

struct cache {
	pthread_mutex_t mu; /* guards everything */
	bool enabled;       /* serving and keeping */
	/* Readers' snapshots are matched against it. It starts at 2 and grows by 2 (odd numbers are
	 * never handed out) so that it is never 0, which cache_generation answers while the cache
	 * is off: an offer read then can never match. */
	uint64_t generation;
	size_t budget, bytes, n_sets;              /* resolve rows: limit, held, entries */
	size_t cursor;                             /* where eviction continues */
	struct set_entry *sets[SET_BUCKETS];       /* resolve rows by key */
	struct rev_entry *revs[REV_BUCKETS];       /* announced revisions by project */
	struct token_entry *tokens[TOKEN_BUCKETS]; /* tokens by hash */
	size_t n_tokens;                           /* entries in tokens */
	bool keyring_stale;                        /* the keyring changed: read it again */
	uint64_t hits, misses, token_hits, token_misses;
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
	set->bytes = size;
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
	if (set != NULL && atomic_fetch_sub(&set->refs, 1) == 1)
		free(set);
}

/* ---- hashing ---- */

static uint32_t fnv(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static uint32_t hash_id(int64_t id)
{
	uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;
	return (uint32_t)(x >> 32);
}

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
	pthread_mutex_init(&c->mu, NULL);
	c->budget = budget_bytes;
	c->generation = 2;
	*out = c;
	return 0;
}

/* With the lock held: drops every resolve set, announced revision and token. */
static void drop_all(struct cache *c, bool revs)
{
	for (size_t i = 0; i < SET_BUCKETS; i++)
		for (struct set_entry *s = c->sets[i], *next; s; s = next) {
			next = s->next;
			cached_rows_unref(s->set);
			free(s);
		}
	memset(c->sets, 0, sizeof(c->sets));
	c->bytes = c->n_sets = 0;
	for (size_t i = 0; revs && i < REV_BUCKETS; i++) {
		for (struct rev_entry *r = c->revs[i], *next; r; r = next) {
			next = r->next;
			free(r);
		}
		c->revs[i] = NULL;
	}
	for (size_t i = 0; i < TOKEN_BUCKETS; i++)
		for (struct token_entry *t = c->tokens[i], *next; t; t = next) {
			next = t->next;
			crypt_wipe(t, sizeof(*t));
			free(t);
		}
	memset(c->tokens, 0, sizeof(c->tokens));
	c->n_tokens = 0;
}

void cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	drop_all(c, true);
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

void cache_project_changed(struct cache *c, int64_t project_id, int64_t revision)
{
	int64_t rev = revision < 0 ? INT64_MAX : revision;
	pthread_mutex_lock(&c->mu);
	/* Remember the announcement: an offer read before it is refused. */
	struct rev_entry **slot = &c->revs[hash_id(project_id) & (REV_BUCKETS - 1)];
	struct rev_entry *r = *slot;
	while (r && r->project_id != project_id)
		r = r->next;
	if (r == NULL && (r = calloc(1, sizeof(*r))) != NULL) {
		r->project_id = project_id;
		r->next = *slot;
		*slot = r;
	}
	if (r && rev > r->revision)
		r->revision = rev;
	if (r == NULL) /* out of memory: forget everything rather than keep something stale */
		drop_all(c, false);
	for (size_t i = 0; i < SET_BUCKETS && r; i++)
		for (struct set_entry **pp = &c->sets[i]; *pp;) {
			struct set_entry *s = *pp;
			if (s->set->project_id == project_id && s->set->revision < rev) {
				*pp = s->next;
				c->bytes -= s->set->bytes;
				c->n_sets--;
				cached_rows_unref(s->set);
				free(s);
			} else {
				pp = &s->next;
			}
		}
	if (revision < 0) /* its tokens are revoked with it */
		c->generation += 2;
	if (revision < 0)
		for (size_t i = 0; i < TOKEN_BUCKETS; i++)
			for (struct token_entry **pp = &c->tokens[i]; *pp;) {
				struct token_entry *t = *pp;
				if (t->t.role != ROLE_ADMIN) {
					*pp = t->next;
					crypt_wipe(t, sizeof(*t));
					free(t);
					c->n_tokens--;
				} else {
					pp = &t->next;
				}
			}
	pthread_mutex_unlock(&c->mu);
}

void cache_token_changed(struct cache *c, const char *id)
{
	pthread_mutex_lock(&c->mu);
	c->generation += 2; /* a lookup that read the token before the change must not keep it */
	for (size_t i = 0; i < TOKEN_BUCKETS; i++)
		for (struct token_entry **pp = &c->tokens[i]; *pp;) {
			struct token_entry *t = *pp;
			if (strcmp(t->t.id, id) == 0) {
				*pp = t->next;
				crypt_wipe(t, sizeof(*t));
				free(t);
				c->n_tokens--;
			} else {
				pp = &t->next;
			}
		}
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

struct cached_rows *cache_rows_get(struct cache *c, const char *project, const char *environment,
                                   int version)
{
	char key[KEY_MAX];
	int n = make_key(key, project, environment, version);
	if (n < 0)
		return NULL;
	uint32_t h = fnv(key, (size_t)n);
	struct cached_rows *found = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->enabled) {
		for (struct set_entry *s = c->sets[h & (SET_BUCKETS - 1)]; s; s = s->next)
			if (s->hash == h && strcmp(s->key, key) == 0) {
				found = cached_rows_ref(s->set);
				break;
			}
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
	for (struct rev_entry *r = c->revs[hash_id(project_id) & (REV_BUCKETS - 1)]; r; r = r->next)
		if (r->project_id == project_id)
			return r->revision;
	return 0;
}

/* With the lock held: drops sets until they fit three quarters of the budget. */
static void evict(struct cache *c)
{
	size_t target = c->budget / 4 * 3;
	for (size_t k = 0; k < SET_BUCKETS && c->bytes > target; k++) {
		size_t i = (c->cursor + k) & (SET_BUCKETS - 1);
		while (c->sets[i] && c->bytes > target) {
			struct set_entry *s = c->sets[i];
			c->sets[i] = s->next;
			c->bytes -= s->set->bytes;
			c->n_sets--;
			cached_rows_unref(s->set);
			free(s);
		}
		c->cursor = i + 1;
	}
}

void cache_rows_put(struct cache *c, uint64_t generation, const char *project,
                    const char *environment, int version, struct cached_rows *set)
{
	char key[KEY_MAX];
	int n = make_key(key, project, environment, version);
	if (n < 0 || generation == 0 || set->bytes > c->budget / 4)
		return;
	uint32_t h = fnv(key, (size_t)n);
	pthread_mutex_lock(&c->mu);
	if (!c->enabled || generation != c->generation ||
	    set->revision < announced(c, set->project_id)) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	struct set_entry **slot = &c->sets[h & (SET_BUCKETS - 1)];
	struct set_entry *s = *slot;
	while (s && !(s->hash == h && strcmp(s->key, key) == 0))
		s = s->next;
	if (s != NULL) {
		/* Keep the newer of the two (a project deleted and made again starts over). */
		if (s->set->project_id == set->project_id && s->set->revision >= set->revision) {
			pthread_mutex_unlock(&c->mu);
			return;
		}
		c->bytes -= s->set->bytes;
		cached_rows_unref(s->set);
	} else if ((s = calloc(1, sizeof(*s))) != NULL) {
		memcpy(s->key, key, (size_t)n + 1);
		s->hash = h;
		s->next = *slot;
		*slot = s;
		c->n_sets++;
	}
	if (s != NULL) {
		s->set = cached_rows_ref(set);
		c->bytes += set->bytes;
		if (c->bytes > c->budget)
			evict(c);
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- tokens ---- */

bool cache_token_get(struct cache *c, const uint8_t *hash, struct token *out)
{
	uint32_t h = fnv(hash, CRYPT_TOKEN_HASH_BYTES);
	bool found = false;
	pthread_mutex_lock(&c->mu);
	if (c->enabled) {
		for (struct token_entry *t = c->tokens[h & (TOKEN_BUCKETS - 1)]; t; t = t->next)
			if (memcmp(t->hash, hash, CRYPT_TOKEN_HASH_BYTES) == 0) {
				*out = t->t;
				found = true;
				break;
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
	uint32_t h = fnv(hash, CRYPT_TOKEN_HASH_BYTES);
	pthread_mutex_lock(&c->mu);
	if (!c->enabled || generation != c->generation) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	struct token_entry **slot = &c->tokens[h & (TOKEN_BUCKETS - 1)];
	for (struct token_entry *x = *slot; x; x = x->next)
		if (memcmp(x->hash, hash, CRYPT_TOKEN_HASH_BYTES) == 0) {
			x->t = *t;
			pthread_mutex_unlock(&c->mu);
			return;
		}
	if (c->n_tokens >= MAX_TOKENS) /* rare: many live tokens on one replica; start over */
		for (size_t i = 0; i < TOKEN_BUCKETS; i++)
			for (struct token_entry *x = c->tokens[i], *next; x; x = next) {
				next = x->next;
				crypt_wipe(x, sizeof(*x));
				free(x);
				c->tokens[i] = NULL;
				c->n_tokens = 0;
			}
	struct token_entry *e = calloc(1, sizeof(*e));
	if (e != NULL) {
		memcpy(e->hash, hash, CRYPT_TOKEN_HASH_BYTES);
		e->t = *t;
		e->next = *slot;
		*slot = e;
		c->n_tokens++;
	}
	pthread_mutex_unlock(&c->mu);
}

void cache_stats(struct cache *c, struct cache_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = (struct cache_stats){.hits = c->hits,
	                            .misses = c->misses,
	                            .token_hits = c->token_hits,
	                            .token_misses = c->token_misses,
	                            .sets = c->n_sets,
	                            .bytes = c->bytes,
	                            .tokens = c->n_tokens,
	                            .enabled = c->enabled};
	pthread_mutex_unlock(&c->mu);
}
