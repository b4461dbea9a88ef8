/*
 * store.c - connections, SQLSTATE mapping, transactions (store_tx) and the connection pool.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "clock.h"
#include "log.h"
#include "store_internal.h"

struct store {
	PGconn *conn;                 /* the connection, possibly broken */
	char *url;                    /* to reconnect */
	int64_t timeout_ms;           /* statement_timeout in force, 0 = unknown */
	bool in_tx;                   /* inside a transaction (store_tx, migrations) */
	int64_t revision_hint;        /* the revision the open transaction writes */
	struct store_changes changes; /* what the open (or last committed) transaction changed */
};

/* ---- errors ---- */

int store__fail(struct store *s, PGresult *res, const char *what, struct cof_err *e)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (primary == NULL)
		primary = PQerrorMessage(s->conn);
	cof_err_detail(e, "%s: %s%s%s", what, state ? state : "", state ? " " : "", primary);
	if (PQstatus(s->conn) != CONNECTION_OK || state == NULL || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P", 3) == 0)
		return cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return cof_err_set(e, COF_ERETRY, "a concurrent change interfered; try again");
	if (strcmp(state, "57014") == 0)
		return cof_err_set(e, COF_EDEADLINE,
		                   "the database did not answer before the deadline");
	if (strcmp(state, "23505") == 0)
		return cof_err_set(e, COF_EEXIST, "already exists");
	return cof_err_set(e, COF_EINTERNAL, "internal storage error");
}

/* Reconnects a broken connection and restores its statement timeout; whether it is up. */
static bool reconnect(struct store *s)
{
	PQreset(s->conn);
	s->in_tx = false;
	if (PQstatus(s->conn) != CONNECTION_OK)
		return false;
	if (s->timeout_ms > 0) {
		char sql[64];
		snprintf(sql, sizeof(sql), "SET statement_timeout = %" PRId64, s->timeout_ms);
		PGresult *r = PQexec(s->conn, sql);
		bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok)
			s->timeout_ms = 0;
	}
	return true;
}

PGresult *store__exec(struct store *s, const char *sql, int n, const char *const *vals,
                      const int *lens, const int *fmts, const char *what, struct cof_err *e)
{
	for (int attempt = 0;; attempt++) {
		PGresult *res = PQexecParams(s->conn, sql, n, NULL, vals, lens, fmts, 0);
		ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			return res;
		/* A connection found dead outside a transaction (a backend terminated, a database
		 * restarted while the connection was idle) is made again once: outside a
		 * transaction only BEGIN, reads and idempotent inserts run, so nothing can be done
		 * twice. */
		bool retry = attempt == 0 && !s->in_tx && PQstatus(s->conn) != CONNECTION_OK;
		if (retry) {
			PQclear(res);
			if (reconnect(s))
				continue;
			res = NULL;
		}
		store__fail(s, res, what, e);
		PQclear(res);
		return NULL;
	}
}

int store__run(struct store *s, const char *sql, int n, const char *const *vals, const int *lens,
               const int *fmts, const char *what, struct cof_err *e)
{
	PGresult *r = store__exec(s, sql, n, vals, lens, fmts, what, e);
	if (r == NULL)
		return e && e->code ? e->code : COF_EINTERNAL;
	PQclear(r);
	return 0;
}

PGconn *store__conn(struct store *s)
{
	return s->conn;
}

int store__col_bytea(PGresult *r, int row, int col, uint8_t **out, size_t *len, struct cof_err *e)
{
	*out = NULL;
	*len = 0;
	size_t n = 0;
	unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
	if (raw == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	*out = malloc(n ? n : 1);
	if (*out != NULL) {
		memcpy(*out, raw, n);
		*len = n;
	}
	PQfreemem(raw);
	return *out ? 0 : cof_err_set(e, COF_EINTERNAL, "out of memory");
}

/* ---- connection ---- */

/* Server notices (NOTICE, WARNING) go to the debug log, not to stderr. */
static void on_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("database notice: %s", message);
}

int store_open(const char *url, struct store **out, struct cof_err *e)
{
	*out = NULL;
	struct store *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->url = strdup(url ? url : "")) == NULL) {
		free(s);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	*out = s;
	s->conn = PQconnectdb(s->url);
	PQsetNoticeProcessor(s->conn, on_notice, NULL);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		cof_err_detail(e, "connect: %s", PQerrorMessage(s->conn));
		return cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
	}
	return 0;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	PQfinish(s->conn);
	free(s->url);
	free(s);
}

int store_call_begin(struct store *s, int64_t timeout_ms, struct cof_err *e)
{
	if (PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) == PQTRANS_UNKNOWN) {
		PQreset(s->conn);
		s->timeout_ms = 0;
		s->in_tx = false;
		if (PQstatus(s->conn) != CONNECTION_OK) {
			cof_err_detail(e, "reconnect: %s", PQerrorMessage(s->conn));
			return cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
		}
	}
	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		store__rollback(s);
	if (timeout_ms < 1)
		timeout_ms = 1;
	if (timeout_ms != s->timeout_ms) {
		char sql[64];
		snprintf(sql, sizeof(sql), "SET statement_timeout = %" PRId64, timeout_ms);
		PGresult *r = store__exec(s, sql, 0, NULL, NULL, NULL, "set timeout", e);
		if (r == NULL)
			return e ? e->code : COF_EUNAVAIL;
		PQclear(r);
		s->timeout_ms = timeout_ms;
	}
	return 0;
}

bool store_ping(struct store *s)
{
	/* A connection that went stale while idle gets one fresh attempt. */
	for (int attempt = 0; attempt < 2; attempt++) {
		if (PQstatus(s->conn) != CONNECTION_OK) {
			PQreset(s->conn);
			s->timeout_ms = 0;
		}
		PGresult *r = PQexec(s->conn, "SELECT 1");
		bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		if (ok)
			return true;
	}
	return false;
}

static int simple(struct store *s, const char *sql, struct cof_err *e)
{
	return store__run(s, sql, 0, NULL, NULL, NULL, sql, e);
}

int store__begin(struct store *s, enum store_tx_mode mode, struct cof_err *e)
{
	int rc =
	        simple(s,
	               mode == STORE_TX_SNAPSHOT ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	                                         : "BEGIN",
	               e);
	s->in_tx = rc == 0;
	s->revision_hint = 0;
	memset(&s->changes, 0, sizeof(s->changes));
	return rc;
}

void store__revision_hint(struct store *s, int64_t revision)
{
	s->revision_hint = revision;
}

void store__changed_project(struct store *s, int64_t project_id, int64_t revision)
{
	s->changes.project_id = project_id;
	s->changes.revision = revision;
}

void store__changed_token(struct store *s, const char *id)
{
	snprintf(s->changes.token_id, sizeof(s->changes.token_id), "%s", id);
}

void store_last_changes(struct store *s, struct store_changes *out)
{
	*out = s->changes;
}

int store__commit(struct store *s, struct cof_err *e)
{
	s->in_tx = false;
	PGresult *r = PQexec(s->conn, "COMMIT");
	if (r && PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		return 0;
	}
	/* An error answer means PostgreSQL rolled the transaction back. No answer at all (the
	 * connection was lost on the way) leaves the outcome unknown: say so, never "retry". */
	bool answered = r && PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL;
	int rc = store__fail(s, r, "commit", e);
	PQclear(r);
	if (!answered) {
		log_error("a commit's outcome is unknown: %s", e->detail);
		rc = cof_err_set(
		        e, COF_EUNKNOWN,
		        "the database connection was lost during the commit: the write may "
		        "or may not have been applied; read before writing again");
	}
	return rc;
}

void store__rollback(struct store *s)
{
	s->in_tx = false;
	memset(&s->changes, 0, sizeof(s->changes));
	if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
		PGresult *r = PQexec(s->conn, "ROLLBACK");
		PQclear(r);
	}
}

int store__audit_row(struct store *s, const struct audit_row *ev, struct cof_err *e)
{
	char v[24], c[24], rev[24], n[24];
	const char *vals[10] = {ev->token_id,
	                        ev->method,
	                        ev->project,
	                        ev->environment,
	                        ev->secret,
	                        I64(v, ev->version),
	                        I64(c, ev->code),
	                        ev->peer,
	                        I64(rev, ev->revision),
	                        I64(n, ev->count > 1 ? ev->count : 1)};
	return store__run(
	        s,
	        "INSERT INTO audit_events (token_id, method, project, environment, secret, "
	        "version, code, peer, revision, count) "
	        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	        10, vals, NULL, NULL, "audit insert", e);
}

/* One attempt: BEGIN, the body, the audit row, COMMIT. */
static int tx_once(struct store *s, enum store_tx_mode mode, store_tx_fn fn, void *arg,
                   struct audit_row *audit, struct cof_err *e)
{
	int rc = store__begin(s, mode, e);
	if (rc)
		return rc;
	rc = fn(s, arg, e);
	if (rc == STORE_TX_DISCARD) {
		store__rollback(s);
		return 0;
	}
	if (rc)
		goto out_rollback;
	if (audit) {
		audit->revision = s->revision_hint;
		audit->code = 0;
		if ((rc = store__audit_row(s, audit, e))) {
			cof_err_detail(e, "audit insert: %s", e->detail);
			rc = cof_err_set(e, COF_EUNAVAIL, "the audit log is unavailable");
			goto out_rollback;
		}
	}
	if ((rc = store__commit(s, e)) == 0 && audit)
		audit->committed = true;
	return rc;
out_rollback:
	store__rollback(s);
	return rc;
}

int store_tx(struct store *s, enum store_tx_mode mode, store_tx_fn fn, void *arg,
             struct audit_row *audit, struct cof_err *e)
{
	if (audit)
		audit->committed = false;
	int rc = COF_ERETRY;
	for (int i = 0; i < STORE_TX_ATTEMPTS && rc == COF_ERETRY; i++)
		rc = tx_once(s, mode, fn, arg, audit, e);
	return rc;
}

/* ---- the pool ---- */

struct pool_slot {
	struct store *s; /* the connection, NULL until first used */
	bool lent;       /* a call has it */
	int state;       /* 1 up, 0 down, -1 never used */
};

struct store_pool {
	char *url;              /* for new connections */
	struct pool_slot *slot; /* size of them */
	int size;               /* entries in slot */
	pthread_mutex_t mu;     /* guards slot */
	pthread_cond_t freed;   /* signalled when a connection comes back */
};

int store_pool_new(const char *url, int size, struct store_pool **out, struct cof_err *e)
{
	*out = NULL;
	struct store_pool *p = calloc(1, sizeof(*p));
	if (p == NULL || (p->url = strdup(url ? url : "")) == NULL ||
	    (p->slot = calloc((size_t)(size > 0 ? size : 1), sizeof(*p->slot))) == NULL) {
		store_pool_free(p);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	p->size = size > 0 ? size : 1;
	for (int i = 0; i < p->size; i++)
		p->slot[i].state = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->freed, NULL);
	*out = p;
	return 0;
}

void store_pool_free(struct store_pool *p)
{
	if (p == NULL)
		return;
	if (p->slot) {
		for (int i = 0; i < p->size; i++)
			store_close(p->slot[i].s);
		pthread_cond_destroy(&p->freed);
		pthread_mutex_destroy(&p->mu);
	}
	free(p->slot);
	free(p->url);
	free(p);
}

static struct pool_slot *slot_of(struct store_pool *p, const struct store *s)
{
	for (int i = 0; i < p->size; i++)
		if (p->slot[i].s == s)
			return &p->slot[i];
	return NULL;
}

int store_pool_acquire(struct store_pool *p, int64_t timeout_ms, struct store **out,
                       struct cof_err *e)
{
	*out = NULL;
	struct timespec until = clock_realtime_after_ms(timeout_ms);
	struct pool_slot *free_slot = NULL;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		for (int i = 0; i < p->size && free_slot == NULL; i++)
			if (!p->slot[i].lent)
				free_slot = &p->slot[i];
		if (free_slot || pthread_cond_timedwait(&p->freed, &p->mu, &until) != 0)
			break;
	}
	if (free_slot)
		free_slot->lent = true;
	pthread_mutex_unlock(&p->mu);
	if (free_slot == NULL)
		return cof_err_set(e, COF_EUNAVAIL, "no database connection is free; try again");
	int rc = 0;
	if (free_slot->s == NULL) {
		rc = store_open(p->url, &free_slot->s, e);
		if (free_slot->s == NULL)
			rc = rc ? rc : COF_EINTERNAL;
	}
	if (rc == 0)
		rc = store_call_begin(free_slot->s, timeout_ms, e);
	pthread_mutex_lock(&p->mu);
	free_slot->state = rc == 0 ? 1 : 0;
	if (rc) {
		free_slot->lent = false;
		pthread_cond_signal(&p->freed);
	}
	pthread_mutex_unlock(&p->mu);
	if (rc == 0)
		*out = free_slot->s;
	return rc;
}

void store_pool_release(struct store_pool *p, struct store *s)
{
	if (s == NULL)
		return;
	if (s->in_tx)
		store__rollback(s);
	pthread_mutex_lock(&p->mu);
	struct pool_slot *slot = slot_of(p, s);
	if (slot) {
		slot->lent = false;
		if (PQstatus(s->conn) != CONNECTION_OK)
			slot->state = 0;
	}
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->mu);
}

void store_pool_states(struct store_pool *p, int *up, int *down)
{
	*up = *down = 0;
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->size; i++) {
		*up += p->slot[i].state == 1;
		*down += p->slot[i].state == 0;
	}
	pthread_mutex_unlock(&p->mu);
}

/* ---- notifications ---- */

int store_listen(const char *url, const char *channel, struct store **out, struct cof_err *e)
{
	*out = NULL;
	struct store *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->url = strdup(url ? url : "")) == NULL) {
		free(s);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	/* The URL's own settings, then bounds of ours: a dead peer is found within seconds. */
	const char *keys[] = {"dbname",
	                      "connect_timeout",
	                      "keepalives",
	                      "keepalives_idle",
	                      "keepalives_interval",
	                      "keepalives_count",
	                      "application_name",
	                      NULL};
	const char *vals[] = {s->url, "5", "1", "5", "2", "3", "cofferd listener", NULL};
	s->conn = PQconnectdbParams(keys, vals, 1);
	PQsetNoticeProcessor(s->conn, on_notice, NULL);
	*out = s;
	if (PQstatus(s->conn) != CONNECTION_OK) {
		cof_err_detail(e, "listen: connect: %s", PQerrorMessage(s->conn));
		return cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
	}
	char *ident = PQescapeIdentifier(s->conn, channel, strlen(channel));
	char sql[160];
	snprintf(sql, sizeof(sql), "LISTEN %s", ident ? ident : "\"\"");
	PQfreemem(ident);
	PGresult *r = PQexec(s->conn, sql);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = store__fail(s, r, "listen", e);
	PQclear(r);
	return rc;
}

int store_listen_wait(struct store *s, int timeout_ms, void (*fn)(void *arg, const char *payload),
                      void *arg, struct cof_err *e)
{
	int fd = PQsocket(s->conn);
	if (fd < 0 || PQstatus(s->conn) != CONNECTION_OK)
		return cof_err_set(e, COF_EUNAVAIL, "the notification connection is lost");
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, timeout_ms);
	if (n < 0 && errno != EINTR)
		return cof_err_set(e, COF_EUNAVAIL, "the notification connection is lost");
	if (n > 0 && !PQconsumeInput(s->conn)) {
		cof_err_detail(e, "listen: %s", PQerrorMessage(s->conn));
		return cof_err_set(e, COF_EUNAVAIL, "the notification connection is lost");
	}
	PGnotify *note;
	while ((note = PQnotifies(s->conn)) != NULL) {
		fn(arg, note->extra ? note->extra : "");
		PQfreemem(note);
	}
	if (PQstatus(s->conn) != CONNECTION_OK)
		return cof_err_set(e, COF_EUNAVAIL, "the notification connection is lost");
	return 0;
}

bool store_listen_ping(struct store *s)
{
	PGresult *r = PQexec(s->conn, "SELECT 1");
	bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	return ok;
}
