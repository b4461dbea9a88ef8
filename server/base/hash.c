/* hash.c - the intrusive chained hash table and the hash functions (see hash.h). */
#include "hash.h"

#include <stdlib.h>
#include <string.h>

int hash_init(struct hash *t, size_t chains)
{
	memset(t, 0, sizeof(*t));
	if (chains == 0 || (chains & (chains - 1)) != 0)
		return -1;
	t->chains = calloc(chains, sizeof(*t->chains));
	if (t->chains == NULL)
		return -1;
	t->mask = chains - 1;
	return 0;
}

void hash_destroy(struct hash *t)
{
	if (t == NULL)
		return;
	free(t->chains);
	memset(t, 0, sizeof(*t));
}

void hash_add(struct hash *t, struct hash_node *n, uint64_t hash)
{
	struct hash_node **chain = &t->chains[hash & t->mask];
	n->hash = hash;
	n->next = *chain;
	*chain = n;
	t->n++;
}

void hash_remove(struct hash *t, struct hash_node *n)
{
	for (struct hash_node **pp = &t->chains[n->hash & t->mask]; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			t->n--;
			return;
		}
}

struct hash_node *hash_first(const struct hash *t, uint64_t hash)
{
	struct hash_node *n = t->chains[hash & t->mask];
	while (n != NULL && n->hash != hash)
		n = n->next;
	return n;
}

struct hash_node *hash_next(const struct hash_node *n)
{
	uint64_t hash = n->hash;
	for (n = n->next; n != NULL && n->hash != hash; n = n->next)
		;
	return (struct hash_node *)n;
}

size_t hash_sweep(struct hash *t, size_t from, bool (*drop)(struct hash_node *n, void *arg),
                  bool (*stop)(void *arg), void *arg)
{
	size_t i = from & t->mask;
	for (size_t k = 0; k <= t->mask; k++, i = (i + 1) & t->mask) {
		if (stop != NULL && stop(arg))
			return i;
		for (struct hash_node **pp = &t->chains[i]; *pp;) {
			struct hash_node *n = *pp, *next = n->next;
			if (drop(n, arg)) {
				*pp = next;
				t->n--;
			} else {
				pp = &n->next;
			}
			if (stop != NULL && stop(arg))
				return (i + 1) & t->mask;
		}
	}
	return i;
}

uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

uint64_t hash_str(const char *s)
{
	return hash_bytes(s, strlen(s));
}

uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}
