/* handlers.c - helpers shared by the handlers, and the worker state they use. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "keys.h"
#include "metrics.h"

#include <stdatomic.h>
#include "log.h"
#include "status.h"
#include "validate.h"

void *app_worker_init(void *app_arg)
{
	struct app *app = app_arg;
	static atomic_int next_index;
	struct worker_state *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->index =
	        atomic_fetch_add(&next_index, 1) % (app->cfg->workers > 0 ? app->cfg->workers : 1);
	struct cof_err e = {0};
	if (store_open(app->cfg->database_url, &w->store, &e) != 0)
		log_warn("worker: %s (%s); will retry on the next call", e.msg, e.detail);
	return w;
}

void app_worker_fini(void *state)
{
	struct worker_state *w = state;
	if (w == NULL)
		return;
	store_close(w->store);
	free(w);
}

struct app *handler_app(struct rpc_ctx *ctx)
{
	return rpc_app(ctx);
}

struct store *handler_store(struct rpc_ctx *ctx, struct cof_err *e)
{
	struct worker_state *w = rpc_worker_state(ctx);
	if (w == NULL || w->store == NULL) {
		cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
		return NULL;
	}
	int64_t ms = rpc_remaining_ms(ctx);
	if (ms < 0)
		ms = handler_app(ctx)->cfg->statement_timeout_ms;
	if (store_call_begin(w->store, ms, e) != 0) {
		metrics_db_state(handler_app(ctx)->metrics, w->index, false);
		return NULL;
	}
	metrics_db_state(handler_app(ctx)->metrics, w->index, true);
	store_audit_set(w->store, access_write_audit(ctx));
	keys_refresh_if_due(w->store, handler_app(ctx)->keyring);
	return w->store;
}

int handler_error(struct rpc_ctx *ctx, const struct cof_err *e)
{
	int code = status_from_code(e->code);
	if (e->code == COF_EUNAVAIL)
		metrics_db_error(handler_app(ctx)->metrics);
	if (e->detail[0] || code == RPC_INTERNAL || code == RPC_UNAVAILABLE) {
		char members[1024] = "\"method\":\"";
		log_json_escape(members, sizeof(members) - 64, rpc_method(ctx));
		size_t n = strlen(members);
		snprintf(members + n, sizeof(members) - n, "\",\"code\":\"%s\",\"detail\":\"",
		         rpc_code_name(code));
		log_json_escape(members, sizeof(members) - 2, e->detail);
		n = strlen(members);
		snprintf(members + n, sizeof(members) - n, "\"");
		log_fields(code == RPC_INTERNAL ? LOG_ERROR : LOG_WARN, e->msg, members);
	}
	return rpc_fail(ctx, code, "%s", e->msg[0] ? e->msg : rpc_code_name(code));
}

Google__Protobuf__Timestamp *handler_timestamp(struct rpc_ctx *ctx, int64_t us)
{
	Google__Protobuf__Timestamp *ts = rpc_alloc(ctx, sizeof(*ts));
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

int handler_page(struct rpc_ctx *ctx, const char *token, int32_t size, char *after, size_t cap,
                 int *limit)
{
	if (!validate_page_size(size, limit))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "page_size must be from 0 to %d",
		                VALIDATE_MAX_PAGE_SIZE);
	if (!page_token_decode(token, after, cap))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "page_token is not valid");
	return RPC_OK;
}

char *handler_next_token(struct rpc_ctx *ctx, const char *last_name)
{
	char buf[2 * 130 + 8];
	page_token_encode(last_name, buf, sizeof(buf));
	return rpc_strdup(ctx, buf);
}

int handler_check_project(struct rpc_ctx *ctx, const char *name)
{
	if (!validate_slug(name))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "project name must match ^[a-z][a-z0-9-]{0,62}$");
	rpc_note_project(ctx, name);
	return RPC_OK;
}

int handler_check_environment(struct rpc_ctx *ctx, const char *field, const char *name)
{
	if (!validate_slug(name))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "%s must match ^[a-z][a-z0-9-]{0,62}$",
		                field);
	return RPC_OK;
}

int handler_check_secret(struct rpc_ctx *ctx, const char *name)
{
	if (!validate_secret_name(name))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "secret name must match ^[A-Za-z_][A-Za-z0-9_]{0,127}$");
	return RPC_OK;
}

int handler_check_value(struct rpc_ctx *ctx, const char *value)
{
	if (!validate_value(value))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT,
		                "value must be UTF-8 of at most %d bytes",
		                VALIDATE_MAX_VALUE_BYTES);
	return RPC_OK;
}

int handler_check_description(struct rpc_ctx *ctx, const char *description)
{
	if (!validate_description(description))
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "description must be at most %d bytes",
		                VALIDATE_MAX_DESCRIPTION_BYTES);
	return RPC_OK;
}

int handler_check_version(struct rpc_ctx *ctx, int version, bool allow_unspecified)
{
	if (version == 1 || version == 2 || (allow_unspecified && version == 0))
		return RPC_OK;
	return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "version must be VERSION_DRAFT or VERSION_LIVE");
}

int handler_check_revision(struct rpc_ctx *ctx, const char *field, int64_t revision)
{
	if (revision < 0)
		return rpc_fail(ctx, RPC_INVALID_ARGUMENT, "%s must not be negative", field);
	return RPC_OK;
}
