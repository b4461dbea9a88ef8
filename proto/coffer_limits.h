/*
 * coffer_limits.h - every limit Coffer holds names, values, projects, requests and clients to, and
 * the name rules, once. The server's rooms and libcoffer both read it (it sits with
 * coffer_shared.h, below both sides); docs/api.md ("Common", "Limits") says the same in prose. How
 * long a setting may be is not here: every setting and its default is the settings table's
 * (server/daemon/settings.c).
 */
#ifndef COFFER_LIMITS_H
#define COFFER_LIMITS_H

/* ---- names and values (docs/api.md, "Common") ---- */

/* The name rules, as the API states them. validate.c implements them by hand (names are checked on
 * every call); tests/unit/test_validate.c checks it against these patterns, and scripts/check-docs
 * that docs/api.md quotes them. */
#define COFFER_RULE_SLUG        "^[a-z][a-z0-9-]{0,62}$"
#define COFFER_RULE_SECRET_NAME "^[A-Za-z_][A-Za-z0-9_]{0,127}$"
#define LIMIT_SLUG_CHARS        63  /* a project or environment name, as COFFER_RULE_SLUG */
#define LIMIT_SECRET_NAME_CHARS 128 /* a secret name, as COFFER_RULE_SECRET_NAME */
/* A buffer for any name and its NUL (secret names are the longest). */
#define LIMIT_NAME_BUF (LIMIT_SECRET_NAME_CHARS + 1)

#define LIMIT_VALUE_BYTES       65536 /* a secret's value, UTF-8 */
#define LIMIT_DESCRIPTION_BYTES 1024  /* a project's or secret's description */
#define LIMIT_DESCRIPTION_BUF   (LIMIT_DESCRIPTION_BYTES + 1)
#define LIMIT_DEFAULT_PAGE_SIZE 100  /* page_size 0 */
#define LIMIT_PAGE_SIZE         1000 /* the largest page_size */

/* ---- a project ---- */

#define LIMIT_SECRETS_PER_PROJECT      5000
#define LIMIT_ENVIRONMENTS_PER_PROJECT 500
#define LIMIT_PROJECT_VALUE_BYTES      (16 << 20) /* its values, defaults and overrides together */

/* ---- one request ---- */

/* Names one ResolveSecrets may ask for: as many as a project may hold. */
#define LIMIT_RESOLVE_NAMES LIMIT_SECRETS_PER_PROJECT
/* Names one HTTP GET may ask for (?names=): fewer than gRPC's, because the list travels in the
 * URL, which the listener bounds (with the headers) to LIMIT_HTTP_HEAD_BYTES; 500 short names
 * fit, 5000 never would. */
#define LIMIT_HTTP_NAMES   500
#define LIMIT_CHANGES      1000      /* changes in one ApplyChanges */
#define LIMIT_CHANGE_BYTES (2 << 20) /* the values of one ApplyChanges together */
#define LIMIT_TOKEN_ENVS   32        /* environments one token may be scoped to */
/* The longest a token may live (ttl_seconds). */
#define LIMIT_TOKEN_TTL_SECONDS (10LL * 366 * 24 * 3600)
/* How long a resolve waits for min_revision before UNAVAILABLE. */
#define LIMIT_MIN_REVISION_WAIT_MS 2000
/* Key terms a keyring holds (each rotation adds one). */
#define LIMIT_KEY_TERMS 1024

/* ---- the HTTP listener (docs/api.md, "HTTP") ---- */

#define LIMIT_HTTP_HEAD_BYTES   8192  /* request line and headers; more: 431 (414 for the URL) */
#define LIMIT_HTTP_HEAD_MS      5000  /* to send them, from connecting */
#define LIMIT_HTTP_BODY_MS      10000 /* to send a POST's body, from the end of its head */
#define LIMIT_HTTP_IDLE_SECONDS 30    /* a keep-alive connection with nothing to do */
#define LIMIT_HTTP_CALL_MS      10000 /* a request's deadline: its answer, or 504 */
#define LIMIT_HTTP_DRAIN_MS     2000 /* on stop, after the calls drained: answers still going out */

/* ---- clients ---- */

/* The deadline of each call libcoffer makes unless its options say otherwise, and the CLI's
 * --timeout-ms. */
#define LIMIT_CLIENT_TIMEOUT_MS 10000

/* A limit as text, for help lines: LIMIT_TEXT(LIMIT_CLIENT_TIMEOUT_MS) is "10000". */
#define LIMIT_TEXT_(x) #x
#define LIMIT_TEXT(x)  LIMIT_TEXT_(x)

#endif
