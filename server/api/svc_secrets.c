/* svc_secrets.c - service coffer.v1.Secrets. */
#include "call.h"
#include "watch_streams.h"
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changeset.h"
#include "quota.h"
#include "resolve.h"
#include "secrets.h"
#include "validate.h"

/* How long a resolve may wait for min_revision when the client set no deadline. */

/* The project a secret belongs to, for fill_secret: the request's. */
struct secret_row {
	const char *project;      /* project name */
	const struct secret *sec; /* the secret */
};

static void fill_secret_of(struct call *c, Coffer__V1__Secret *out, const char *project,
                           const struct secret *s)
{
	out->project = call_strdup(c, project);
	out->name = call_strdup(c, s->name);
	out->visibility = (Coffer__V1__Visibility)s->visibility;
	out->description = call_strdup(c, s->description);
	out->revision = s->revision;
	out->create_time = call_timestamp(c, s->create_us);
	out->update_time = call_timestamp(c, s->update_us);
}

static int check_names(struct call *c, const char *project, const char *name)
{
	int code = call_check_project(c, project);
	if (code == RPC_OK && name)
		code = call_check_secret(c, name);
	return code;
}

static int check_visibility(struct call *c, int vis, bool allow_unspecified)
{
	if (vis == VISIBILITY_MASKED || vis == VISIBILITY_RESTRICTED || (allow_unspecified && !vis))
		return RPC_OK;
	return call_fail(c, RPC_INVALID_ARGUMENT, "visibility %d is not a known value", vis);
}

static int create_secret(struct call *c, const Coffer__V1__CreateSecretRequest *req,
                         Coffer__V1__Secret *resp)
{
	int vis = req->visibility ? (int)req->visibility : VISIBILITY_MASKED;
	int code;
	if ((code = check_names(c, req->project, req->name)) ||
	    (code = call_check_value(c, req->value)) ||
	    (code = call_check_description(c, req->description)) ||
	    (code = check_visibility(c, vis, false)))
		return code;
	struct secret_spec spec = {req->project, req->name, req->value, vis, req->description};
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct secret out;
	if (ss == NULL || secrets_create(ss, &spec, policy_write_audit(c), &out, &e) != 0)
		return call_error(c, &e);
	fill_secret_of(c, resp, req->project, &out);
	return RPC_OK;
}

static int get_secret(struct call *c, const Coffer__V1__GetSecretRequest *req,
                      Coffer__V1__Secret *resp)
{
	int code = check_names(c, req->project, req->name);
	if (code)
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct secret out;
	if (ss == NULL || secrets_get(ss, req->project, req->name, &out, &e) != 0)
		return call_error(c, &e);
	fill_secret_of(c, resp, req->project, &out);
	return RPC_OK;
}

static void fill_secret(struct call *c, void *msg, const void *row)
{
	const struct secret_row *r = row;
	fill_secret_of(c, msg, r->project, r->sec);
}

static void secret_key(const void *row, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", ((const struct secret_row *)row)->sec->name);
}

static int list_secrets(struct call *c, const Coffer__V1__ListSecretsRequest *req,
                        Coffer__V1__ListSecretsResponse *resp)
{
	struct page pg;
	int code, n = 0;
	if ((code = check_names(c, req->project, NULL)) ||
	    (code = call_page_begin(c, req->page_token, req->page_size, &pg)))
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct secret *found = call_alloc(c, sizeof(*found) * (size_t)(pg.limit + 1));
	struct secret_row *rows = call_alloc(c, sizeof(*rows) * (size_t)(pg.limit + 1));
	if (found == NULL || rows == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	if (ss == NULL || secrets_list(ss, req->project, pg.after, pg.limit + 1, found, &n, &e))
		return call_error(c, &e);
	for (int i = 0; i < n; i++)
		rows[i] = (struct secret_row){req->project, &found[i]};
	return call_page_end(c, &pg, rows, sizeof(*rows), n, &coffer__v1__secret__descriptor,
	                     fill_secret, secret_key, &resp->secrets, &resp->n_secrets,
	                     &resp->next_page_token);
}

static int update_secret(struct call *c, const Coffer__V1__UpdateSecretRequest *req,
                         Coffer__V1__Secret *resp)
{
	struct secret_change ch = {
	        .project = req->project,
	        .name = req->name,
	        .visibility = req->visibility,
	        .expected_revision = req->expected_revision,
	};
	int code;
	if ((code = check_names(c, req->project, req->name)))
		return code;
	if (req->value_update_case == COFFER__V1__UPDATE_SECRET_REQUEST__VALUE_UPDATE_VALUE) {
		if ((code = call_check_value(c, req->value)))
			return code;
		ch.value = req->value;
	}
	if (req->description_update_case ==
	    COFFER__V1__UPDATE_SECRET_REQUEST__DESCRIPTION_UPDATE_DESCRIPTION) {
		if ((code = call_check_description(c, req->description)))
			return code;
		ch.description = req->description;
	}
	if ((code = check_visibility(c, ch.visibility, true)) ||
	    (code = call_check_revision(c, "expected_revision", ch.expected_revision)))
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct secret out;
	if (ss == NULL || secrets_update(ss, &ch, policy_write_audit(c), &out, &e) != 0)
		return call_error(c, &e);
	fill_secret_of(c, resp, req->project, &out);
	return RPC_OK;
}

static int delete_secret(struct call *c, const Coffer__V1__DeleteSecretRequest *req,
                         Google__Protobuf__Empty *resp)
{
	int code;
	if ((code = check_names(c, req->project, req->name)) ||
	    (code = call_check_revision(c, "expected_revision", req->expected_revision)))
		return code;
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	if (ss == NULL || secrets_delete(ss, req->project, req->name, req->expected_revision,
	                                 policy_write_audit(c), &e) != 0)
		return call_error(c, &e);
	return RPC_OK;
}

static int reveal_secret(struct call *c, const Coffer__V1__RevealSecretRequest *req,
                         Coffer__V1__RevealSecretResponse *resp)
{
	int code = check_names(c, req->project, req->name);
	if (code)
		return code;
	bool has_env = req->environment && *req->environment;
	if (has_env && (code = call_check_environment(c, "environment name", req->environment)))
		return code;
	if (has_env && !version_is_env(req->version))
		return call_fail(
		        c, RPC_INVALID_ARGUMENT,
		        "version must be VERSION_DRAFT or VERSION_LIVE with an environment");
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	struct revealed r;
	if (ss == NULL ||
	    secrets_reveal(ss, req->project, req->name, has_env ? req->environment : NULL,
	                   req->version, &r, &e) != 0)
		return call_error(c, &e);
	resp->value = call_alloc(c, r.len + 1);
	if (resp->value == NULL) {
		secrets_revealed_clear(&r);
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	memcpy(resp->value, r.value, r.len);
	resp->source = (Coffer__V1__ValueSource)r.source;
	resp->revision = r.revision;
	call_note_revision(c, r.revision);
	secrets_revealed_clear(&r);
	return RPC_OK;
}

static void *call_alloc_fn(void *call, size_t n)
{
	return call_alloc(call, n);
}

/* Points resp at the resolved secrets (arena memory); the plaintext is wiped with the arena. */
static int fill_resolved(struct call *c, const struct resolved *out,
                         Coffer__V1__ResolveSecretsResponse *resp)
{
	resp->revision = out->revision;
	resp->not_modified = out->not_modified;
	resp->secrets = call_alloc(c, sizeof(*resp->secrets) * (out->n_secrets + 1));
	resp->missing = call_alloc(c, sizeof(*resp->missing) * (out->n_missing + 1));
	if (resp->secrets == NULL || resp->missing == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	for (size_t i = 0; i < out->n_secrets; i++) {
		const struct resolved_secret *x = &out->secrets[i];
		Coffer__V1__ResolvedSecret *m = call_alloc(c, sizeof(*m));
		if (m == NULL)
			return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
		coffer__v1__resolved_secret__init(m);
		m->name = call_strdup(c, x->name);
		m->value = x->value; /* opened into the call's arena */
		m->visibility = (Coffer__V1__Visibility)x->visibility;
		m->source = (Coffer__V1__ValueSource)x->source;
		m->revision = x->revision;
		resp->secrets[i] = m;
	}
	resp->n_secrets = out->n_secrets;
	for (size_t i = 0; i < out->n_missing; i++)
		resp->missing[i] = call_strdup(c, out->missing[i]);
	resp->n_missing = out->n_missing;
	return RPC_OK;
}

/* Packs the answer of every name once, keeps it sealed beside its rows for the resolves of the
 * same state that follow, and sends these bytes rather than packing resp again. */
static void keep_answer(struct call *c, struct session *ss, const struct resolved *out,
                        const Coffer__V1__ResolveSecretsResponse *resp)
{
	size_t len = protobuf_c_message_get_packed_size(&resp->base);
	uint8_t *packed = malloc(len ? len : 1);
	if (packed == NULL)
		return;
	protobuf_c_message_pack(&resp->base, packed);
	resolve_keep_answer(ss, out, packed, len);
	rpc_answer_packed(c->rpc, packed, len);
}

/* What ResolveSecrets and WatchSecrets both name: an environment's version of a project, and
 * perhaps some of its secrets. RPC_OK, or the refusal. */
static int check_target(struct call *c, const char *what, const char *project,
                        const char *environment, int version, char *const *names, size_t n)
{
	int code;
	if ((code = call_check_project(c, project)) ||
	    (code = call_check_environment(c, "environment", environment)) ||
	    (code = call_check_version(c, version, false)))
		return code;
	if (n > LIMIT_RESOLVE_NAMES)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "at most %d names in one %s",
		                 LIMIT_RESOLVE_NAMES, what);
	for (size_t i = 0; i < n; i++)
		if ((code = call_check_secret(c, names[i])))
			return code;
	return RPC_OK;
}

static int resolve_secrets_rpc(struct call *c, const Coffer__V1__ResolveSecretsRequest *req,
                               Coffer__V1__ResolveSecretsResponse *resp)
{
	int code;
	if ((code = check_target(c, "resolve", req->project, req->environment, req->version,
	                         req->names, req->n_names)) ||
	    (code = call_check_revision(c, "min_revision", req->min_revision)) ||
	    (code = call_check_revision(c, "at_revision", req->at_revision)) ||
	    (code = call_check_revision(c, "known_revision", req->known_revision)))
		return code;
	struct resolve_request r = {
	        .project = req->project,
	        .environment = req->environment,
	        .version = (enum version)req->version,
	        .names = (const char *const *)req->names,
	        .n_names = req->n_names,
	        .min_revision = req->min_revision,
	        .at_revision = req->at_revision,
	        .known_revision = req->known_revision,
	        .alloc = call_alloc_fn,
	        .alloc_arg = c,
	        .kept_answers = true,
	};
	struct cof_err e = {0};
	struct session *ss = call_memory_session(c, &e);
	struct resolved out;
	if (ss == NULL)
		return call_error(c, &e);
	if (resolve_secrets(ss, &r, &out, &e) != 0) {
		/* Behind min_revision: park until the project gets there (or the time is up). */
		int64_t wait = call_remaining_ms(c);
		if (wait < 0 || wait > LIMIT_MIN_REVISION_WAIT_MS)
			wait = LIMIT_MIN_REVISION_WAIT_MS;
		if (out.behind && c->wait.history_moved)
			return call_fail(
			        c, RPC_UNAVAILABLE,
			        "the database failed over to another history, which has not "
			        "reached revision %lld: writes acknowledged before the "
			        "failover may be lost; resolve without min_revision, or write "
			        "again",
			        (long long)req->min_revision);
		if (out.behind &&
		    call_wait_revision(c, out.project_id, req->min_revision, wait) == CALL_PARK)
			return CALL_PARK;
		return call_error(c, &e);
	}
	call_note_revision(c, out.revision);
	if (out.answer != NULL) { /* the answer kept for this state: sent as it is */
		rpc_answer_packed(c->rpc, out.answer, out.answer_len);
		out.answer = NULL;
		resolve_clear(&out);
		return RPC_OK;
	}
	code = fill_resolved(c, &out, resp);
	if (code == RPC_OK && out.keep_answer)
		keep_answer(c, ss, &out, resp);
	resolve_clear(&out);
	return code;
}

static int watch_secrets(struct call *c, struct rpc_stream *st)
{
	const Coffer__V1__WatchSecretsRequest *req = (const void *)c->req;
	int code;
	if ((code = check_target(c, "watch", req->project, req->environment, req->version,
	                         req->names, req->n_names)) ||
	    (code = call_check_revision(c, "from_revision", req->from_revision)))
		return code;
	if (c->api->watches == NULL)
		return call_fail(c, RPC_UNAVAILABLE, "the database is unavailable");
	return watch_open(c->api->watches, c, req, st);
}

/* ---- ApplyChanges: many writes, one revision ---- */

/* Changes in one request, and the bytes of their values together. */

/* Re-states the message of a refused change with its index and secret, as the change set's. */
static int at_change(struct call *c, size_t i, const char *secret, int code)
{
	struct cof_err e = {.code = code};
	snprintf(e.msg, sizeof(e.msg), "%s", rpc_ctx_message(c->rpc));
	changeset_blame(&e, i, secret);
	return call_fail(c, code, "%s", e.msg);
}

/* Checks change m as its single call would and fills *out (pointing into m). */
static int read_change(struct call *c, const char *project, size_t i, const Coffer__V1__Change *m,
                       struct change *out, size_t *bytes)
{
	memset(out, 0, sizeof(*out));
	int code = RPC_OK;
	const char *secret = NULL;
	switch (m->change_case) {
	case COFFER__V1__CHANGE__CHANGE_CREATE_SECRET: {
		const Coffer__V1__CreateSecretChange *x = m->create_secret;
		int vis = x->visibility ? (int)x->visibility : VISIBILITY_MASKED;
		secret = x->name;
		out->op = OP_CREATE_SECRET;
		out->create = (struct secret_spec){project, x->name, x->value, vis, x->description};
		*bytes += strlen(x->value);
		if ((code = call_check_secret(c, x->name)) ||
		    (code = call_check_value(c, x->value)) ||
		    (code = call_check_description(c, x->description)))
			break;
		code = check_visibility(c, vis, false);
		break;
	}
	case COFFER__V1__CHANGE__CHANGE_UPDATE_SECRET: {
		const Coffer__V1__UpdateSecretChange *x = m->update_secret;
		bool has_value = x->value_update_case ==
		                 COFFER__V1__UPDATE_SECRET_CHANGE__VALUE_UPDATE_VALUE;
		bool has_desc = x->description_update_case ==
		                COFFER__V1__UPDATE_SECRET_CHANGE__DESCRIPTION_UPDATE_DESCRIPTION;
		secret = x->name;
		out->op = OP_UPDATE_SECRET;
		out->update = (struct secret_change){project,
		                                     x->name,
		                                     has_value ? x->value : NULL,
		                                     has_desc ? x->description : NULL,
		                                     (int)x->visibility,
		                                     0};
		if (has_value)
			*bytes += strlen(x->value);
		if ((code = call_check_secret(c, x->name)) ||
		    (has_value && (code = call_check_value(c, x->value))) ||
		    (has_desc && (code = call_check_description(c, x->description))) ||
		    (code = check_visibility(c, (int)x->visibility, true)))
			break;
		if (!has_value && !has_desc && !x->visibility)
			code = call_fail(c, RPC_INVALID_ARGUMENT, "the update changes nothing");
		break;
	}
	case COFFER__V1__CHANGE__CHANGE_DELETE_SECRET:
		secret = m->delete_secret->name;
		out->op = OP_DELETE_SECRET;
		out->update = (struct secret_change){.project = project, .name = secret};
		code = call_check_secret(c, secret);
		break;
	case COFFER__V1__CHANGE__CHANGE_SET_OVERRIDE:
	case COFFER__V1__CHANGE__CHANGE_DELETE_OVERRIDE: {
		bool set = m->change_case == COFFER__V1__CHANGE__CHANGE_SET_OVERRIDE;
		const char *env =
		        set ? m->set_override->environment : m->delete_override->environment;
		int version = (int)(set ? m->set_override->version : m->delete_override->version);
		secret = set ? m->set_override->secret : m->delete_override->secret;
		out->op = set ? OP_SET_OVERRIDE : OP_DELETE_OVERRIDE;
		out->ov = (struct override_change){
		        project, env, version, secret, set ? m->set_override->value : NULL, 0};
		if (set)
			*bytes += strlen(m->set_override->value);
		if ((code = call_check_environment(c, "environment", env)) ||
		    (code = call_check_version(c, version, false)) ||
		    (code = call_check_secret(c, secret)))
			break;
		if (set)
			code = call_check_value(c, m->set_override->value);
		break;
	}
	default:
		return call_fail(c, RPC_INVALID_ARGUMENT,
		                 "change %zu sets none of create_secret, "
		                 "update_secret, delete_secret, set_override, delete_override",
		                 i);
	}
	return code ? at_change(c, i, secret, code) : RPC_OK;
}

static int apply_changes(struct call *c, const Coffer__V1__ApplyChangesRequest *req,
                         Coffer__V1__ApplyChangesResponse *resp)
{
	int code;
	if ((code = call_check_project(c, req->project)) ||
	    (code = call_check_revision(c, "expected_revision", req->expected_revision)))
		return code;
	if (req->n_changes == 0)
		return call_fail(c, RPC_INVALID_ARGUMENT, "the change set is empty");
	if (req->n_changes > LIMIT_CHANGES)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "%zu changes in one set; at most %d",
		                 req->n_changes, LIMIT_CHANGES);
	struct change *changes = call_alloc(c, req->n_changes * sizeof(*changes));
	struct change_result *results = call_alloc(c, req->n_changes * sizeof(*results));
	if (changes == NULL || results == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	size_t bytes = 0;
	for (size_t i = 0; i < req->n_changes; i++)
		if ((code = read_change(c, req->project, i, req->changes[i], &changes[i], &bytes)))
			return code;
	if (bytes > LIMIT_CHANGE_BYTES)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED,
		                 "the values of one change set hold %zu bytes; at most %d", bytes,
		                 LIMIT_CHANGE_BYTES);
	struct cof_err e = {0};
	struct session *ss = call_session(c, &e);
	int64_t revision = 0;
	size_t failed = 0;
	if (ss == NULL ||
	    changeset_apply(ss, req->project, req->expected_revision, req->dry_run, changes,
	                    req->n_changes, &c->audit, results, &revision, &failed, &e) != 0)
		return call_error(c, &e);
	call_note_revision(c, revision);
	resp->revision = revision;
	resp->applied = !req->dry_run;
	resp->results = call_alloc(c, req->n_changes * sizeof(*resp->results));
	Coffer__V1__ChangeResult *rows = call_alloc(c, req->n_changes * sizeof(*rows));
	if (resp->results == NULL || rows == NULL)
		return call_fail(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	for (size_t i = 0; i < req->n_changes; i++) {
		coffer__v1__change_result__init(&rows[i]);
		rows[i].index = (int32_t)i;
		rows[i].kind = (Coffer__V1__ChangeKind)results[i].kind;
		rows[i].secret = call_strdup(c, results[i].secret);
		rows[i].environment = call_strdup(c, results[i].environment);
		rows[i].version = (Coffer__V1__Version)results[i].version;
		resp->results[i] = &rows[i];
	}
	resp->n_results = req->n_changes;
	return RPC_OK;
}

const Coffer__V1__Secrets__Handlers secrets_handlers = {
        .apply_changes = apply_changes,
        .watch_secrets = watch_secrets,
        .create_secret = create_secret,
        .get_secret = get_secret,
        .list_secrets = list_secrets,
        .update_secret = update_secret,
        .delete_secret = delete_secret,
        .reveal_secret = reveal_secret,
        .resolve_secrets = resolve_secrets_rpc,
};
