/*
 * list.h - an intrusive doubly linked list (as libuv's queue.h, the kernel's list_head): an entry
 * embeds a struct list_node, and a list is a struct list_node of its own, the head, that links to
 * itself when the list is empty. Nothing here allocates; adding and removing are O(1).
 */
#ifndef COFFER_LIST_H
#define COFFER_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *prev; /* the one before; the head's is the last */
	struct list_node *next; /* the one after; the head's is the first */
};

/* An empty list (head), or a node in no list. */
static inline void list_init(struct list_node *head)
{
	head->prev = head->next = head;
}

static inline bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

/* Whether n is in a list (it was added and not removed since list_init or list_remove). */
static inline bool list_linked(const struct list_node *n)
{
	return n->next != NULL && n->next != n;
}

/* Adds n first in head's list. */
static inline void list_add(struct list_node *head, struct list_node *n)
{
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

/* Adds n last in head's list. */
static inline void list_add_tail(struct list_node *head, struct list_node *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/* Takes n out of its list; it is then in none (list_linked is false). */
static inline void list_remove(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

/* The entry of type that embeds node as member. */
#define list_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

/* Every entry (of pos's type, linked by its member) of head's list, in order. */
#define list_for_each_entry(pos, head, member)                                                     \
	for ((pos) = list_entry((head)->next, __typeof__(*(pos)), member);                         \
	     &(pos)->member != (head);                                                             \
	     (pos) = list_entry((pos)->member.next, __typeof__(*(pos)), member))

/* Every node of head's list, in order; with _safe, pos may be removed on the way. */
#define list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
#define list_for_each_safe(pos, tmp, head)                                                         \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                           \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif
