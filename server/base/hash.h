/*
 * hash.h - an intrusive chained hash table: an entry embeds a struct hash_node, which keeps the
 * hash of the entry's key; the table is a power-of-two array of chains. It never compares keys:
 * a lookup walks the nodes of one hash (hash_first, hash_next) and the caller compares. Nothing
 * here locks. And the hash functions every table uses.
 */
#ifndef COFFER_HASH_H
#define COFFER_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hash_node {
	struct hash_node *next; /* the next of its chain */
	uint64_t hash;          /* of its entry's key */
};

struct hash {
	struct hash_node **chains; /* mask + 1 of them */
	size_t mask;               /* chains - 1 */
	size_t n;                  /* nodes in the table */
};

/* A table of `chains` chains (a power of two); 0, or -1 when out of memory. */
int hash_init(struct hash *t, size_t chains) __attribute__((warn_unused_result));
/* Frees the chains (the nodes are the caller's: remove them first). NULL-safe. */
void hash_destroy(struct hash *t);

/* Adds n (not in the table) under hash. */
void hash_add(struct hash *t, struct hash_node *n, uint64_t hash);
/* Takes n out of the table. */
void hash_remove(struct hash *t, struct hash_node *n);
/* The first node under hash, and the next one under the same hash after n; NULL at the end. */
struct hash_node *hash_first(const struct hash *t, uint64_t hash);
struct hash_node *hash_next(const struct hash_node *n);

/* Calls drop with every node, chain by chain from chain `from` (wrapping round), until drop has
 * been called for all or stop(arg) says enough; a node for which drop returns true is taken out
 * of the table, and drop may have freed it (the table does not read it again). Returns the chain
 * after the last one visited, for a caller that continues there next time (an eviction cursor). */
size_t hash_sweep(struct hash *t, size_t from, bool (*drop)(struct hash_node *n, void *arg),
                  bool (*stop)(void *arg), void *arg);

/* The entry of type that embeds node as member. */
#define hash_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

/* 64-bit FNV-1a of n bytes, and of a string. */
uint64_t hash_bytes(const void *p, size_t n);
uint64_t hash_str(const char *s);
/* A well-mixed hash of a number (a project's id). */
uint64_t hash_u64(uint64_t x);

#endif
