/*
 * svc_sessions.c - service coffer.console.v1.Sessions: the console's sign-in (docs/console.md).
 * Signing in exchanges the caller's token (a person's: admin, editor, viewer) for a session whose
 * secret the HTTP listener puts in a cookie and takes out of the answer (connect.c); later calls
 * carry the cookie instead of the token. Over Connect only: a session is a cookie.
 */
#include "call.h"
#include "policy.h"

#include <string.h>

#include "tokens.h"

/* Sessions live in cookies: a call another transport carried is refused. */
static int over_connect(struct call *c)
{
	if (strcmp(rpc_transport(c->rpc), CALL_CONNECT_TRANSPORT) == 0)
		return RPC_OK;
	return call_fail(c, RPC_FAILED_PRECONDITION,
	                 "console sessions are cookies of the HTTP listener: call Sessions over "
	                 "Connect");
}

/* The session of the call: its token, its end, how long it may go unused. */
static int fill(struct call *c, Coffer__Console__V1__Session *resp, int64_t end_us)
{
	resp->token = call_alloc(c, sizeof(*resp->token));
	if (resp->token == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	coffer__v1__token__init(resp->token);
	call_token_message(c, resp->token, &c->caller);
	resp->expire_time = call_timestamp(c, end_us);
	resp->idle_seconds = c->api->cfg.session_idle_s;
	resp->reveal_seconds = c->api->cfg.reveal_s;
	return RPC_OK;
}

static int sign_in(struct call *c, const Coffer__Console__V1__SignInRequest *req,
                   Coffer__Console__V1__Session *resp)
{
	(void)req;
	int code = over_connect(c);
	if (code)
		return code;
	if (c->session_end_us != 0 || c->caller.id[0] == '\0')
		return call_fail(c, RPC_UNAUTHENTICATED,
		                 "sign in with a token (Authorization: Bearer)");
	if (c->caller.role == ROLE_RUNTIME)
		return call_fail(
		        c, RPC_PERMISSION_DENIED,
		        "a runtime token cannot sign in to the console: use an admin, editor "
		        "or viewer token");
	char *secret = call_alloc(c, TOKEN_SECRET_MAX);
	if (secret == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	int64_t end_us = 0;
	if (ss == NULL || tokens_session_start(ss, &c->caller, c->api->cfg.session_max_s,
	                                       c->api->cfg.session_idle_s, policy_write_audit(c),
	                                       secret, &end_us, &e) != 0)
		return call_error(c, &e);
	resp->secret = secret;
	return fill(c, resp, end_us);
}

static int sign_out(struct call *c, const Coffer__Console__V1__SignOutRequest *req,
                    Google__Protobuf__Empty *resp)
{
	(void)req;
	(void)resp;
	int code = over_connect(c);
	if (code)
		return code;
	const char *secret = rpc_metadata(c->rpc, CALL_SESSION_KEY);
	if (c->session_end_us == 0 || secret == NULL)
		return call_fail(c, RPC_FAILED_PRECONDITION,
		                 "this call carries no console session");
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	if (ss == NULL || tokens_session_end(ss, secret, policy_write_audit(c), &e) != 0)
		return call_error(c, &e);
	return RPC_OK;
}

static int get_session(struct call *c, const Coffer__Console__V1__GetSessionRequest *req,
                       Coffer__Console__V1__Session *resp)
{
	(void)req;
	int code = over_connect(c);
	if (code)
		return code;
	if (c->session_end_us == 0)
		return call_fail(c, RPC_FAILED_PRECONDITION,
		                 "this call carries no console session");
	return fill(c, resp, c->session_end_us);
}

const Coffer__Console__V1__Sessions__Handlers sessions_handlers = {
        .sign_in = sign_in,
        .sign_out = sign_out,
        .get_session = get_session,
};
