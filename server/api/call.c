/* call.c - the per-request owner and the helpers every handler shares (see call.h). */
#include "call.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coffer_limits.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "status.h"
#include "validate.h"

struct call *call_new(struct api *api, struct rpc_ctx *rpc, const coffer_method_desc *m)
{
	struct call *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->api = api;
	c->rpc = rpc;
	c->method = m;
	snprintf(c->audit.method, sizeof(c->audit.method), "%s", m->path);
	snprintf(c->audit.peer, sizeof(c->audit.peer), "%s", rpc_peer(rpc));
	snprintf(c->audit.transport, sizeof(c->audit.transport), "%s", rpc_transport(rpc));
	/* "ipv4:10.0.0.7:51234" -> "ipv4:10.0.0.7": a client picks its ports freely. */
	snprintf(c->address, sizeof(c->address), "%s", rpc_peer(rpc));
	char *colon = strrchr(c->address, ':');
	if (colon && colon > strchr(c->address, ':'))
		*colon = '\0';
	return c;
}

void call_free(struct call *c)
{
	if (c == NULL)
		return;
	session_close(&c->db);
	free(c);
}

struct session *call_session(struct call *c, struct cof_err *e)
{
	if (c->db.store)
		return &c->db;
	if (c->api->domain == NULL) {
		cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
		return NULL;
	}
	if (c->mode == CALL_INLINE) {
		c->would_block = true;
		cof_err_set(e, COF_EWOULDBLOCK, "the call needs the database");
		return NULL;
	}
	/* The database work ends a little before the client's deadline (a tenth of what is left,
	 * at most 250 ms), so that the client hears why from the server (UNKNOWN for a commit
	 * not confirmed, DEADLINE_EXCEEDED for a statement not answered) rather than from its own
	 * timer. */
	int64_t ms = rpc_remaining_ms(c->rpc);
	if (ms < 0)
		ms = c->api->cfg.statement_timeout_ms;
	else
		ms -= ms / 10 < 250 ? ms / 10 : 250;
	if (session_open(c->api->domain, ms, &c->db, e) != 0)
		return NULL;
	keys_refresh_if_due(&c->db);
	return &c->db;
}

struct session *call_memory_session(struct call *c, struct cof_err *e)
{
	if (c->mode != CALL_INLINE || c->api->domain == NULL)
		return call_session(c, e);
	session_memory(c->api->domain, &c->db);
	return &c->db;
}

int call_wait_revision(struct call *c, int64_t project_id, int64_t revision, int64_t max_wait_ms)
{
	int64_t now = clock_mono_ms();
	if (c->wait_deadline_ms == 0)
		c->wait_deadline_ms = now + max_wait_ms;
	if (c->api->waits == NULL || now >= c->wait_deadline_ms || atomic_load(&c->api->draining))
		return RPC_OK;
	c->wait_asked = true;
	c->wait_project_id = project_id;
	c->wait_revision = revision;
	return CALL_PARK;
}

int call_error(struct call *c, const struct cof_err *e)
{
	if (e->code == COF_EWOULDBLOCK) {
		c->would_block = true;
		return RPC_UNAVAILABLE; /* not answered: the call runs again on a database thread */
	}
	int code = status_from_code(e->code);
	if (e->code == COF_EUNAVAIL)
		metrics_db_error(c->api->metrics);
	if (e->detail[0] || code == RPC_INTERNAL || code == RPC_UNAVAILABLE) {
		char members[1024] = "\"method\":\"";
		log_json_escape(members, sizeof(members) - 64, c->method->path);
		size_t n = strlen(members);
		snprintf(members + n, sizeof(members) - n, "\",\"code\":\"%s\",\"detail\":\"",
		         rpc_code_name(code));
		log_json_escape(members, sizeof(members) - 2, e->detail);
		n = strlen(members);
		snprintf(members + n, sizeof(members) - n, "\"");
		log_fields(code == RPC_INTERNAL ? LOG_ERROR : LOG_WARN, e->msg, members);
	}
	return call_fail(c, code, "%s", e->msg[0] ? e->msg : rpc_code_name(code));
}

int call_fail(struct call *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rpc_failv(c->rpc, code, fmt, ap);
	va_end(ap);
	return code;
}

void call_note_revision(struct call *c, int64_t revision)
{
	c->audit.revision = revision;
}

int64_t call_remaining_ms(const struct call *c)
{
	return rpc_remaining_ms(c->rpc);
}

void *call_alloc(struct call *c, size_t n)
{
	return rpc_alloc(c->rpc, n);
}

char *call_strdup(struct call *c, const char *s)
{
	return rpc_strdup(c->rpc, s);
}

Google__Protobuf__Timestamp *call_timestamp(struct call *c, int64_t us)
{
	Google__Protobuf__Timestamp *ts = call_alloc(c, sizeof(*ts));
	if (ts == NULL)
		return NULL;
	google__protobuf__timestamp__init(ts);
	ts->seconds = us / 1000000;
	ts->nanos = (int32_t)((us % 1000000) * 1000);
	if (ts->nanos < 0) {
		ts->seconds--;
		ts->nanos += 1000000000;
	}
	return ts;
}

/* ---- request checks ---- */

int call_check_project(struct call *c, const char *name)
{
	if (!validate_slug(name))
		return call_fail(c, RPC_INVALID_ARGUMENT,
		                 "project name must match " COFFER_RULE_SLUG);
	rpc_note_project(c->rpc, name);
	return RPC_OK;
}

int call_check_environment(struct call *c, const char *field, const char *name)
{
	if (!validate_slug(name))
		return call_fail(c, RPC_INVALID_ARGUMENT, "%s must match " COFFER_RULE_SLUG, field);
	return RPC_OK;
}

int call_check_secret(struct call *c, const char *name)
{
	if (!validate_secret_name(name))
		return call_fail(c, RPC_INVALID_ARGUMENT,
		                 "secret name must match " COFFER_RULE_SECRET_NAME);
	return RPC_OK;
}

int call_check_value(struct call *c, const char *value)
{
	if (!validate_value(value))
		return call_fail(c, RPC_INVALID_ARGUMENT, "value must be UTF-8 of at most %d bytes",
		                 LIMIT_VALUE_BYTES);
	return RPC_OK;
}

int call_check_description(struct call *c, const char *description)
{
	if (!validate_description(description))
		return call_fail(c, RPC_INVALID_ARGUMENT, "description must be at most %d bytes",
		                 LIMIT_DESCRIPTION_BYTES);
	return RPC_OK;
}

int call_check_version(struct call *c, int version, bool allow_unspecified)
{
	if (version_is_env(version) || (allow_unspecified && version == 0))
		return RPC_OK;
	return call_fail(c, RPC_INVALID_ARGUMENT, "version must be VERSION_DRAFT or VERSION_LIVE");
}

int call_check_revision(struct call *c, const char *field, int64_t revision)
{
	if (revision < 0)
		return call_fail(c, RPC_INVALID_ARGUMENT, "%s must not be negative", field);
	return RPC_OK;
}

/* ---- pages ---- */

int call_page_begin(struct call *c, const char *token, int32_t size, struct page *p)
{
	if (!validate_page_size(size, &p->limit))
		return call_fail(c, RPC_INVALID_ARGUMENT, "page_size must be from 0 to %d",
		                 LIMIT_PAGE_SIZE);
	if (!page_token_decode(token, p->after, sizeof(p->after)))
		return call_fail(c, RPC_INVALID_ARGUMENT, "page_token is not valid");
	return RPC_OK;
}

int call_page_end(struct call *c, const struct page *p, const void *rows, size_t row_size, int n,
                  const ProtobufCMessageDescriptor *desc, page_fill_fn fill, page_key_fn key,
                  void *items, size_t *n_items, char **next_token)
{
	int shown = n > p->limit ? p->limit : n;
	void **list = call_alloc(c, sizeof(*list) * (size_t)(shown + 1));
	if (list == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	const char *row = rows;
	for (int i = 0; i < shown; i++, row += row_size) {
		ProtobufCMessage *msg = call_alloc(c, desc->sizeof_message);
		if (msg == NULL)
			return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
		protobuf_c_message_init(desc, msg);
		fill(c, msg, row);
		list[i] = msg;
	}
	*(void ***)items = list;
	*n_items = (size_t)shown;
	if (n > p->limit) {
		char last[2 * LIMIT_NAME_BUF + 8], buf[sizeof(last) * 2 + 8];
		key((const char *)rows + (size_t)(shown - 1) * row_size, last, sizeof(last));
		page_token_encode(last, buf, sizeof(buf));
		if ((*next_token = call_strdup(c, buf)) == NULL)
			return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	return RPC_OK;
}
