/*
 * model.h - the model of Coffer, defined once: versions, visibilities, roles, value sources and
 * change kinds by name, and the records the services read (DESIGN.md, "The product").
 *
 * The numbers are the wire contract's (proto/coffer/v1/common.proto, access.proto): the api room
 * checks that at compile time. The store keeps them as they are given. Records carry what a
 * caller may see; internal ids stay inside the domain.
 */
#ifndef COFFER_MODEL_H
#define COFFER_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "coffer_limits.h"

/* Which version of an environment. VERSION_DEFAULT is the project default (storage only). */
enum version { VERSION_DEFAULT = 0, VERSION_DRAFT = 1, VERSION_LIVE = 2 };
/* Who may see a value: MASKED may be revealed by editors; RESTRICTED only reaches runtimes. */
enum visibility { VISIBILITY_MASKED = 1, VISIBILITY_RESTRICTED = 2 };
/* What a token may do (see api/policy.c). */
enum role { ROLE_ADMIN = 1, ROLE_EDITOR = 2, ROLE_VIEWER = 3, ROLE_RUNTIME = 4 };
/* Where an effective value comes from. */
enum value_source { SOURCE_DEFAULT = 1, SOURCE_OVERRIDE = 2 };
/* What a merge does to one override of the target. */
enum change_kind { CHANGE_ADDED = 1, CHANGE_CHANGED = 2, CHANGE_REMOVED = 3 };

/* "draft", "live"; "default" for VERSION_DEFAULT; "?" otherwise. */
const char *version_name(int version);
/* "admin", "editor", "viewer", "runtime"; "none" otherwise. */
const char *role_name(int role);
/* Whether v is VERSION_DRAFT or VERSION_LIVE. */
bool version_is_env(int v);
/* The bit of a version in a token's version set. */
static inline int version_bit(int v)
{
	return 1 << (v - 1);
}

struct project {
	char name[LIMIT_NAME_BUF];               /* unique name */
	char description[LIMIT_DESCRIPTION_BUF]; /* free text */
	int64_t revision;                        /* current revision */
	int64_t create_us;                       /* microseconds since the epoch */
};

struct secret {
	char name[LIMIT_NAME_BUF];               /* unique among the project's secrets */
	enum visibility visibility;              /* masked or restricted */
	char description[LIMIT_DESCRIPTION_BUF]; /* free text */
	int64_t revision;                        /* last change */
	int64_t create_us;                       /* creation time */
	int64_t update_us;                       /* last change time */
};

struct environment {
	char name[LIMIT_NAME_BUF];               /* unique among the project's environments */
	char description[LIMIT_DESCRIPTION_BUF]; /* free text */
	int64_t revision;                        /* last change, overrides included */
	int64_t create_us;                       /* creation time */
};

struct override {
	char secret[LIMIT_NAME_BUF]; /* the secret it overrides */
	enum version version;        /* draft or live */
	int64_t revision;            /* the revision that set it */
	int64_t update_us;           /* when */
};

struct token {
	char id[32];                                 /* tok_..., public */
	char name[LIMIT_NAME_BUF];                   /* label */
	enum role role;                              /* what it may do */
	char project[LIMIT_NAME_BUF];                /* scope; "" for admin */
	int n_envs;                                  /* entries in envs; 0: all */
	char envs[LIMIT_TOKEN_ENVS][LIMIT_NAME_BUF]; /* runtime scope */
	int versions;                                /* version_bit()s; 0: all */
	int64_t create_us;                           /* creation time */
	int64_t expire_us;                           /* 0: never */
};

/* Audit events are obs/audit.h's struct audit_row: the api fills them, the store keeps them. */

#endif
