/*
 * store.c - connections, SQLSTATE mapping, transactions (store_tx) and the connection pool.
 */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdatomic.h>
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
	PGconn *conn;                 /* the connection; NULL or broken until it is made again */
	char *url;                    /* to reconnect */
	const char *app;              /* application_name, unless the URL sets one */
	int64_t timeout_ms;           /* statement_timeout in force, 0 = unknown */
	int64_t deadline_ms;          /* monotonic bound on the call's statements; 0: the default */
	bool in_tx;                   /* inside a transaction (store_tx, migrations) */
	bool listening;               /* LISTENs: never made again silently (the LISTEN would go) */
	uint64_t generation;          /* abandon_generation when it connected */
	const atomic_bool *abort;     /* set: every wait ends at once, nothing more is sent */
	int64_t revision_hint;        /* the revision the open transaction writes */
	struct store_changes changes; /* what the open (or last committed) transaction changed */
	bool binary_results;          /* the next statement's results come in binary format */
};

/* Raised by store_abandon_all: connections made before are given up. */
static atomic_ullong abandon_generation;
/* Commits: when the last one returned, and when the last one did not within its bound. */
static atomic_llong last_commit_ok_ms, last_commit_stall_ms;

/* How long a wait for the socket lasts at most before the abort flag is looked at again. */
#define SLICE_MS 100
/* The bound on a statement run outside a call (start-up, migrations, key maintenance). */
#define DEFAULT_BOUND_MS 60000
/* The bound on a ROLLBACK, which runs after its call's deadline may have passed. */
#define ROLLBACK_BOUND_MS 2000
/* The bound on the listener's statements (LISTEN, its pings). */
#define LISTEN_BOUND_MS 2000

/* Whether s's owner has given up on the database (store_set_abort). */
static bool aborting(const struct store *s)
{
	return s->abort && atomic_load(s->abort);
}

void store_set_abort(struct store *s, const atomic_bool *flag)
{
	s->abort = flag;
}

void store_abandon_all(void)
{
	atomic_fetch_add(&abandon_generation, 1);
}

bool store_writes_stalled(void)
{
	return atomic_load(&last_commit_stall_ms) > atomic_load(&last_commit_ok_ms);
}

/* ---- connection settings ---- */

/* Bounds of ours on every connection, unless the URL sets them: a host that does not answer is
 * given up after connect_timeout (and the next host of the URL tried), and the kernel finds a
 * dead peer or an unacknowledged send within seconds. */
static const struct {
	const char *key, *value;
} conn_defaults[] = {
        {"connect_timeout", "3"},     {"keepalives", "1"},       {"keepalives_idle", "10"},
        {"keepalives_interval", "3"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "10000"},
};

/* The host of a multi-host URL that answered last, per URL: a new connection tries it first, so
 * that a host that hangs costs its connect_timeout once, not at every reconnect. */
#define PREF_URLS 16
static pthread_mutex_t pref_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char *url; /* the URL (malloc'd); NULL: free entry */
	int host;  /* index of the host that answered last */
} pref[PREF_URLS];
static unsigned pref_next; /* the entry replaced next when all are taken */

static int preferred_host(const char *url)
{
	int h = 0;
	pthread_mutex_lock(&pref_mu);
	for (int i = 0; i < PREF_URLS; i++)
		if (pref[i].url && strcmp(pref[i].url, url) == 0)
			h = pref[i].host;
	pthread_mutex_unlock(&pref_mu);
	return h;
}

static void prefer_host(const char *url, int host)
{
	pthread_mutex_lock(&pref_mu);
	int slot = -1;
	for (int i = 0; i < PREF_URLS && slot < 0; i++)
		if (pref[i].url && strcmp(pref[i].url, url) == 0)
			slot = i;
	if (slot < 0 && host != 0) {
		slot = (int)(pref_next++ % PREF_URLS);
		free(pref[slot].url);
		pref[slot].url = strdup(url);
	}
	if (slot >= 0 && pref[slot].url)
		pref[slot].host = host;
	pthread_mutex_unlock(&pref_mu);
}

/* Items of a comma-separated list. */
static int list_count(const char *v)
{
	int n = 1;
	for (; *v; v++)
		n += *v == ',';
	return n;
}

/* Item i of a comma-separated list into out (cap bytes). */
static void list_item(const char *v, int i, char *out, size_t cap)
{
	for (; i > 0 && *v; v++)
		i -= *v == ',';
	size_t n = strcspn(v, ",");
	snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), v);
}

/* The list v (of n items) starting from item first, wrapping round; malloc'd. */
static char *list_rotate(const char *v, int n, int first)
{
	size_t len = strlen(v);
	char *out = malloc(len + 2);
	if (out == NULL)
		return NULL;
	out[0] = '\0';
	for (int k = 0; k < n; k++) {
		char item[1024];
		list_item(v, (first + k) % n, item, sizeof(item));
		if (k)
			strcat(out, ",");
		strncat(out, item, len + 1 - strlen(out));
	}
	return out;
}

/* The option `key` of a parsed connection string, or NULL. */
static const char *opt_val(const PQconninfoOption *o, const char *key)
{
	for (; o->keyword; o++)
		if (strcmp(o->keyword, key) == 0)
			return o->val;
	return NULL;
}

/* After a connection succeeded: which host of the URL answered, remembered for the next. */
static void note_host(const char *url, const PQconninfoOption *opts, PGconn *c)
{
	const char *hosts = opt_val(opts, "host");
	if (hosts == NULL || *hosts == '\0')
		hosts = opt_val(opts, "hostaddr");
	const char *ports = opt_val(opts, "port");
	if (hosts == NULL || strchr(hosts, ',') == NULL)
		return;
	int n = list_count(hosts), np = ports ? list_count(ports) : 0;
	const char *h = PQhost(c), *p = PQport(c);
	for (int i = 0; i < n; i++) {
		char item[1024], port[64] = "";
		list_item(hosts, i, item, sizeof(item));
		if (np == n)
			list_item(ports, i, port, sizeof(port));
		if (h && strcmp(item, h) == 0 && (np != n || (p && strcmp(port, p) == 0))) {
			prefer_host(url, i);
			return;
		}
	}
}

bool store_url_valid(const char *url, char *why, size_t cap)
{
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse(url ? url : "", &err);
	if (o == NULL) {
		snprintf(why, cap, "%s", err ? err : "out of memory");
		size_t n = strlen(why);
		while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == ' '))
			why[--n] = '\0';
	}
	PQfreemem(err);
	PQconninfoFree(o);
	return o != NULL;
}

/* A new connection to url: our bounds unless the URL sets them, the host that answered last
 * first. Never NULL but on OOM; check PQstatus. */
static PGconn *connect_url(const char *url, const char *app)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &err);
	PQfreemem(err);
	if (opts == NULL)
		return PQconnectdb(url); /* says what is wrong with it */
	size_t n = 0;
	for (const PQconninfoOption *o = opts; o->keyword; o++)
		n++;
	const char **keys = calloc(n + 1, sizeof(char *)), **vals = calloc(n + 1, sizeof(char *));
	char *rotated[3] = {NULL, NULL, NULL};
	const char *hosts = opt_val(opts, "host");
	if (hosts == NULL || *hosts == '\0')
		hosts = opt_val(opts, "hostaddr");
	int n_hosts = hosts ? list_count(hosts) : 1;
	int first = n_hosts > 1 ? preferred_host(url) % n_hosts : 0;
	size_t k = 0;
	for (const PQconninfoOption *o = opts; keys && vals && o->keyword; o++) {
		const char *v = o->val;
		for (size_t d = 0;
		     v == NULL && d < sizeof(conn_defaults) / sizeof(conn_defaults[0]); d++)
			if (strcmp(o->keyword, conn_defaults[d].key) == 0)
				v = conn_defaults[d].value;
		if (v == NULL && strcmp(o->keyword, "application_name") == 0)
			v = app;
		static const char *const listed[] = {"host", "hostaddr", "port"};
		for (int l = 0; v && first > 0 && l < 3; l++)
			if (strcmp(o->keyword, listed[l]) == 0 && list_count(v) == n_hosts &&
			    (rotated[l] = list_rotate(v, n_hosts, first)) != NULL)
				v = rotated[l];
		if (v == NULL)
			continue;
		keys[k] = o->keyword;
		vals[k] = v;
		k++;
	}
	PGconn *c = keys && vals ? PQconnectdbParams(keys, vals, 0) : PQconnectdb(url);
	if (PQstatus(c) == CONNECTION_OK) {
		PQsetnonblocking(c, 1);
		note_host(url, opts, c);
	}
	for (int l = 0; l < 3; l++)
		free(rotated[l]);
	free(keys);
	free(vals);
	PQconninfoFree(opts);
	return c;
}

/* ---- errors ---- */

int store__fail(struct store *s, PGresult *res, const char *what, struct cof_err *e)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (primary == NULL)
		primary = s->conn ? PQerrorMessage(s->conn) : "the connection was dropped";
	cof_err_detail(e, "%s: %s%s%s", what, state ? state : "", state ? " " : "", primary);
	if (PQstatus(s->conn) != CONNECTION_OK || state == NULL || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P", 3) == 0)
		return cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
	/* A read-only transaction (a standby, reached by a URL without target_session_attrs):
	 * nothing was written; the connection is made again, to the primary if the URL says how. */
	if (strcmp(state, "25006") == 0) {
		store__drop(s);
		return cof_err_set(e, COF_EUNAVAIL, "the database is read-only; try again");
	}
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return cof_err_set(e, COF_ERETRY, "a concurrent change interfered; try again");
	if (strcmp(state, "57014") == 0)
		return cof_err_set(e, COF_EDEADLINE,
		                   "the database did not answer before the deadline");
	if (strcmp(state, "23505") == 0)
		return cof_err_set(e, COF_EEXIST, "already exists");
	return cof_err_set(e, COF_EINTERNAL, "internal storage error");
}

void store__drop(struct store *s)
{
	PQfinish(s->conn);
	s->conn = NULL;
	s->in_tx = false;
	s->timeout_ms = 0;
}

static void on_notice(void *arg, const char *message);

/* (Re)connects s, the one way every connection is made: 0, or COF_EUNAVAIL with e's detail
 * saying what (NULL e: only the code). */
static int store_connect(struct store *s, const char *what, struct cof_err *e)
{
	store__drop(s);
	s->generation = atomic_load(&abandon_generation);
	s->conn = connect_url(s->url, s->app);
	if (s->conn)
		PQsetNoticeProcessor(s->conn, on_notice, NULL);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		cof_err_detail(e, "%s: %s", what,
		               s->conn ? PQerrorMessage(s->conn) : "out of memory");
		return cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
	}
	return 0;
}

/* ---- statements, bounded on this side ---- */

/* How a bounded statement went when it returned no result. */
enum run_end {
	RUN_BROKEN = 1, /* the connection failed */
	RUN_LATE,       /* the deadline passed before it was sent: nothing was sent */
	RUN_TIMEOUT,    /* no answer before the deadline: the connection was dropped */
	RUN_ABORTED,    /* its owner gave up (store_set_abort): the connection was dropped */
	RUN_ABANDONED,  /* store_abandon_all: the connection was dropped */
};

/* The statement's bound: the call's deadline, else the default. */
static int64_t deadline_of(const struct store *s)
{
	return s->deadline_ms ? s->deadline_ms : clock_mono_ms() + DEFAULT_BOUND_MS;
}

/* Waits until the socket is ready for events or `until` passes: 1 ready, 0 late, -1 aborted or
 * broken, -2 abandoned. */
static int wait_socket(struct store *s, short events, int64_t until)
{
	int fd = PQsocket(s->conn);
	if (fd < 0)
		return -1;
	for (;;) {
		if (aborting(s))
			return -1;
		if (s->generation != atomic_load(&abandon_generation))
			return -2;
		int64_t left = until - clock_mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)(left < SLICE_MS ? left : SLICE_MS));
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* Sends one statement (the simple protocol when it has no parameters, so that a migration may
 * hold several) and takes its result, within `until`. NULL with *end set when there is
 * none; on RUN_TIMEOUT and RUN_ABORTED the connection is dropped, since what it would say next
 * is unknown. */
static PGresult *run_bounded(struct store *s, const char *sql, int n, const char *const *vals,
                             const int *lens, const int *fmts, int64_t until, enum run_end *end)
{
	*end = RUN_BROKEN;
	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK)
		return NULL;
	if (aborting(s) || clock_mono_ms() >= until) {
		*end = aborting(s) ? RUN_ABORTED : RUN_LATE;
		return NULL;
	}
	int sent = n == 0 && vals == NULL ? PQsendQuery(s->conn, sql)
	                                  : PQsendQueryParams(s->conn, sql, n, NULL, vals, lens,
	                                                      fmts, s->binary_results ? 1 : 0);
	if (!sent)
		return NULL;
	int w = 1, f;
	while (w > 0 && (f = PQflush(s->conn)) == 1)
		if ((w = wait_socket(s, POLLIN | POLLOUT, until)) > 0 && !PQconsumeInput(s->conn))
			return NULL;
	PGresult *first = NULL;
	for (; w > 0;) {
		while (w > 0 && PQisBusy(s->conn))
			if ((w = wait_socket(s, POLLIN, until)) > 0 && !PQconsumeInput(s->conn)) {
				PQclear(first);
				return NULL;
			}
		if (w <= 0)
			break;
		PGresult *r = PQgetResult(s->conn);
		if (r == NULL)
			return first;
		/* Of several results (a migration's statements), the first error, else the last. */
		ExecStatusType st = first ? PQresultStatus(first) : PGRES_COMMAND_OK;
		if (first && (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR)) {
			PQclear(r);
		} else {
			PQclear(first);
			first = r;
		}
	}
	PQclear(first);
	*end = w == 0 ? RUN_TIMEOUT : w == -2 ? RUN_ABANDONED : RUN_ABORTED;
	store__drop(s);
	return NULL;
}

/* COPY ... FROM STDIN (sql) with data[0..len), within `until`: as run_bounded, and *sent says
 * whether the data went out (after which an answer that never comes leaves the outcome unknown). */
static PGresult *copy_bounded(struct store *s, const char *sql, const char *data, size_t len,
                              int64_t until, enum run_end *end, bool *sent)
{
	*end = RUN_BROKEN;
	*sent = false;
	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK)
		return NULL;
	if (aborting(s) || clock_mono_ms() >= until) {
		*end = aborting(s) ? RUN_ABORTED : RUN_LATE;
		return NULL;
	}
	if (!PQsendQuery(s->conn, sql))
		return NULL;
	PGresult *last = NULL;
	int w = 1;
	while (w > 0) {
		int f = 0;
		while (w > 0 && (f = PQflush(s->conn)) == 1)
			if ((w = wait_socket(s, POLLIN | POLLOUT, until)) > 0 &&
			    !PQconsumeInput(s->conn))
				goto broken;
		if (f < 0)
			goto broken;
		while (w > 0 && PQisBusy(s->conn))
			if ((w = wait_socket(s, POLLIN, until)) > 0 && !PQconsumeInput(s->conn))
				goto broken;
		if (w <= 0)
			break;
		PGresult *r = PQgetResult(s->conn);
		if (r == NULL)
			return last;
		if (PQresultStatus(r) == PGRES_COPY_IN) {
			PQclear(r);
			/* The whole batch at once; libpq grows its buffer, and the flush above
			 * sends it as the socket takes it. */
			if (*sent || PQputCopyData(s->conn, data, (int)len) != 1 ||
			    PQputCopyEnd(s->conn, NULL) != 1)
				goto broken;
			*sent = true;
			continue;
		}
		/* Of several results, the first error, else the last. */
		ExecStatusType st = last ? PQresultStatus(last) : PGRES_COMMAND_OK;
		if (last && (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR)) {
			PQclear(r);
		} else {
			PQclear(last);
			last = r;
		}
	}
	PQclear(last);
	*end = w == 0 ? RUN_TIMEOUT : w == -2 ? RUN_ABANDONED : RUN_ABORTED;
	store__drop(s);
	return NULL;
broken:
	PQclear(last);
	store__drop(s);
	return NULL;
}

/* A statement that ended without a result: the error to report. */
static int run_failed(struct store *s, enum run_end end, int64_t until, const char *what,
                      struct cof_err *e)
{
	switch (end) {
	case RUN_LATE:
		cof_err_detail(e, "%s: not sent, the deadline had passed", what);
		return cof_err_set(e, COF_EDEADLINE,
		                   "the deadline passed before the database "
		                   "could be asked");
	case RUN_TIMEOUT:
		cof_err_detail(e,
		               "%s: no answer within its bound (%" PRId64 " ms late); connection "
		               "dropped",
		               what, clock_mono_ms() - until);
		return cof_err_set(e, COF_EDEADLINE,
		                   "the database did not answer before the deadline");
	case RUN_ABORTED:
		cof_err_detail(e, "%s: abandoned, the server is stopping", what);
		return cof_err_set(e, COF_EUNAVAIL, "the server is stopping");
	case RUN_ABANDONED:
		cof_err_detail(e, "%s: abandoned, the database stopped answering", what);
		return cof_err_set(e, COF_EUNAVAIL, "the database is unavailable");
	case RUN_BROKEN:
		break;
	}
	return store__fail(s, NULL, what, e);
}

PGresult *store__exec(struct store *s, const char *sql, int n, const char *const *vals,
                      const int *lens, const int *fmts, const char *what, struct cof_err *e)
{
	int64_t until = deadline_of(s);
	for (int attempt = 0;; attempt++) {
		enum run_end end;
		PGresult *res = run_bounded(s, sql, n, vals, lens, fmts, until, &end);
		ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			return res;
		/* A connection found dead outside a transaction (a backend terminated, a database
		 * restarted while the connection was idle) is made again once: outside a
		 * transaction only BEGIN, reads and idempotent inserts run, so nothing can be done
		 * twice. */
		bool retry = res == NULL && end == RUN_BROKEN && attempt == 0 && !s->in_tx &&
		             !s->listening;
		if (retry && store_connect(s, "reconnect", NULL) == 0)
			continue;
		if (res == NULL)
			return (void)run_failed(s, end, until, what, e), NULL;
		store__fail(s, res, what, e);
		PQclear(res);
		return NULL;
	}
}

PGresult *store__exec_binary(struct store *s, const char *sql, int n, const char *const *vals,
                             const char *what, struct cof_err *e)
{
	s->binary_results = true;
	PGresult *r = store__exec(s, sql, n, vals, NULL, NULL, what, e);
	s->binary_results = false;
	return r;
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

int store__copy_in(struct store *s, const char *sql, const char *data, size_t len, const char *what,
                   struct cof_err *e)
{
	if (len > INT_MAX)
		return cof_err_set(e, COF_EINTERNAL, "%s: too much data for one statement", what);
	bool in_tx = s->in_tx;
	int64_t until = deadline_of(s);
	for (int attempt = 0;; attempt++) {
		enum run_end end;
		bool sent;
		PGresult *r = copy_bounded(s, sql, data, len, until, &end, &sent);
		if (r && PQresultStatus(r) == PGRES_COMMAND_OK) {
			PQclear(r);
			if (!in_tx) /* a statement of its own: this was its commit */
				atomic_store(&last_commit_ok_ms, clock_mono_ms());
			return 0;
		}
		/* A connection found dead before anything was sent is made again once, outside a
		 * transaction. */
		if (r == NULL && !sent && end == RUN_BROKEN && attempt == 0 && !in_tx &&
		    store_connect(s, "reconnect", NULL) == 0)
			continue;
		if (r != NULL) { /* an error answer: nothing was written */
			int rc = store__fail(s, r, what, e);
			PQclear(r);
			return rc;
		}
		int rc = run_failed(s, end, until, what, e);
		if (in_tx || !sent)
			return rc;
		/* Sent on its own and never answered: as for a COMMIT, the outcome is unknown. */
		if (end == RUN_TIMEOUT || end == RUN_ABANDONED)
			atomic_store(&last_commit_stall_ms, clock_mono_ms());
		log_error("a commit's outcome is unknown: %s", e->detail);
		return cof_err_set(
		        e, COF_EUNKNOWN,
		        "the database did not confirm the commit: the write may or may not "
		        "have been applied");
	}
}

int store__col_bytea(PGresult *r, int row, int col, uint8_t **out, size_t *len, struct cof_err *e)
{
	*out = NULL;
	*len = 0;
	if (PQfformat(r, col) == 1) { /* binary: the bytes as they are */
		size_t n = (size_t)PQgetlength(r, row, col);
		if ((*out = malloc(n ? n : 1)) == NULL)
			return cof_err_set(e, COF_EINTERNAL, "out of memory");
		memcpy(*out, PQgetvalue(r, row, col), n);
		*len = n;
		return 0;
	}
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

/* A store for url (not connected yet). */
static struct store *store_new(const char *url, const char *app)
{
	struct store *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->url = strdup(url ? url : "")) == NULL) {
		free(s);
		return NULL;
	}
	s->app = app;
	return s;
}

int store_open(const char *url, struct store **out, struct cof_err *e)
{
	*out = store_new(url, "cofferd");
	if (*out == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	return store_connect(*out, "connect", e);
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	PQfinish(s->conn);
	free(s->url);
	free(s);
}

/* statement_timeout is a bound on the server's side too (a statement waiting for a lock ends
 * there even when this side has given up); it is set in whole seconds, so that calls with
 * different deadlines do not each need a SET. */
static int64_t server_timeout_ms(int64_t timeout_ms)
{
	return (timeout_ms + 999) / 1000 * 1000;
}

int store_call_begin(struct store *s, int64_t timeout_ms, struct cof_err *e)
{
	if (timeout_ms < 1)
		timeout_ms = 1;
	s->deadline_ms = 0;
	if (aborting(s))
		return run_failed(s, RUN_ABORTED, 0, "begin", e);
	if (PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) == PQTRANS_UNKNOWN ||
	    s->generation != atomic_load(&abandon_generation)) {
		s->in_tx = false;
		if (store_connect(s, "reconnect", e) != 0)
			return e->code;
	}
	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		store__rollback(s);
	s->deadline_ms = clock_mono_ms() + timeout_ms;
	int64_t server = server_timeout_ms(timeout_ms);
	if (server != s->timeout_ms) {
		char sql[64];
		snprintf(sql, sizeof(sql), "SET statement_timeout = %" PRId64, server);
		int rc = store__run(s, sql, 0, NULL, NULL, NULL, "set timeout", e);
		if (rc)
			return rc;
		s->timeout_ms = server;
	}
	return 0;
}

void store_set_deadline(struct store *s, int64_t timeout_ms)
{
	s->deadline_ms = timeout_ms > 0 ? clock_mono_ms() + timeout_ms : 0;
}

bool store_ping(struct store *s)
{
	/* A connection that went stale while idle gets one fresh attempt. */
	for (int attempt = 0; attempt < 2; attempt++) {
		if (PQstatus(s->conn) != CONNECTION_OK && store_connect(s, "reconnect", NULL) != 0)
			continue;
		struct cof_err e = {0};
		if (store__run(s, "SELECT 1", 0, NULL, NULL, NULL, "ping", &e) == 0)
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
	int64_t until = deadline_of(s);
	enum run_end end;
	PGresult *r = run_bounded(s, "COMMIT", 0, NULL, NULL, NULL, until, &end);
	if (r && PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		atomic_store(&last_commit_ok_ms, clock_mono_ms());
		return 0;
	}
	if (r == NULL && end == RUN_LATE) { /* never sent: the transaction is rolled back */
		s->in_tx = true;
		store__rollback(s);
		return run_failed(s, end, until, "commit", e);
	}
	/* An error answer means PostgreSQL rolled the transaction back. No answer at all (the
	 * connection was lost on the way, or the commit did not return before the deadline: a
	 * synchronous standby away, a primary that hangs) leaves the outcome unknown: say so,
	 * never "retry". */
	bool answered = r && PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL;
	int rc = r ? store__fail(s, r, "commit", e) : run_failed(s, end, until, "commit", e);
	PQclear(r);
	if (!answered) {
		if (r == NULL && (end == RUN_TIMEOUT || end == RUN_ABANDONED))
			atomic_store(&last_commit_stall_ms, clock_mono_ms());
		log_error("a commit's outcome is unknown: %s", e->detail);
		rc = cof_err_set(
		        e, COF_EUNKNOWN,
		        "the database did not confirm the commit: the write may or may not have "
		        "been applied; read before writing again");
	}
	return rc;
}

void store__rollback(struct store *s)
{
	s->in_tx = false;
	memset(&s->changes, 0, sizeof(s->changes));
	if (PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) == PQTRANS_IDLE)
		return;
	/* After the call's deadline, on a bound of its own; a connection that does not answer is
	 * dropped, which rolls the transaction back as well. */
	enum run_end end;
	PGresult *r = run_bounded(s, "ROLLBACK", 0, NULL, NULL, NULL,
	                          clock_mono_ms() + ROLLBACK_BOUND_MS, &end);
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
		store__drop(s);
	PQclear(r);
}

int store__audit_row(struct store *s, const struct audit_row *ev, struct cof_err *e)
{
	char v[24], c[24], rev[24], n[24];
	const char *vals[11] = {ev->token_id,
	                        ev->method,
	                        ev->project,
	                        ev->environment,
	                        ev->secret,
	                        I64(v, ev->version),
	                        I64(c, ev->code),
	                        ev->peer,
	                        I64(rev, ev->revision),
	                        I64(n, ev->count > 1 ? ev->count : 1),
	                        ev->transport[0] ? ev->transport : "grpc"};
	return store__run(
	        s,
	        "INSERT INTO audit_events (token_id, method, project, environment, secret, "
	        "version, code, peer, revision, count, transport) "
	        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
	        11, vals, NULL, NULL, "audit insert", e);
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
		if ((rc = store__audit_row(s, audit, e)) && rc != COF_EDEADLINE) {
			cof_err_detail(e, "audit insert: %s", e->detail);
			rc = cof_err_set(e, COF_EUNAVAIL, "the audit log is unavailable");
		}
		if (rc)
			goto out_rollback;
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

static int probe_body(struct store *s, void *arg, struct cof_err *e)
{
	const char *vals[1] = {arg};
	return store__run(s,
	                  "WITH gone AS (DELETE FROM write_probes WHERE at < now() - interval '1 "
	                  "day') INSERT INTO write_probes (replica, at) VALUES ($1, now()) "
	                  "ON CONFLICT (replica) DO UPDATE SET at = excluded.at",
	                  1, vals, NULL, NULL, "write probe", e);
}

bool store_write_probe(struct store *s, const char *replica, int64_t timeout_ms)
{
	struct cof_err e = {0};
	int rc = store_call_begin(s, timeout_ms, &e);
	if (rc == 0)
		rc = store_tx(s, STORE_TX_WRITE, probe_body, (void *)replica, NULL, &e);
	if (rc)
		log_warn("write probe: %s (%s)", e.msg, e.detail);
	return rc == 0;
}

/* ---- the pool ---- */

struct pool_slot {
	struct store *s; /* the connection, NULL until first used */
	bool lent;       /* a call has it */
	int state;       /* 1 up, 0 down, -1 never used */
};

struct store_pool {
	char *url;                /* for new connections */
	const atomic_bool *abort; /* given to each connection (store_set_abort) */
	struct pool_slot *slot;   /* size of them */
	int size;                 /* entries in slot */
	pthread_mutex_t mu;       /* guards slot */
	pthread_cond_t freed;     /* signalled when a connection comes back */
};

int store_pool_new(const char *url, int size, const atomic_bool *abort, struct store_pool **out,
                   struct cof_err *e)
{
	*out = NULL;
	struct store_pool *p = calloc(1, sizeof(*p));
	if (p == NULL || (p->url = strdup(url ? url : "")) == NULL ||
	    (p->slot = calloc((size_t)(size > 0 ? size : 1), sizeof(*p->slot))) == NULL) {
		store_pool_free(p);
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	}
	p->size = size > 0 ? size : 1;
	p->abort = abort;
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
		if ((free_slot->s = store_new(p->url, "cofferd")) == NULL)
			rc = cof_err_set(e, COF_EINTERNAL, "out of memory");
		else
			free_slot->s->abort = p->abort;
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
	*out = store_new(url, "cofferd listener");
	if (*out == NULL)
		return cof_err_set(e, COF_EINTERNAL, "out of memory");
	struct store *s = *out;
	s->listening = true;
	int rc = store_connect(s, "listen: connect", e);
	if (rc)
		return rc;
	char *ident = PQescapeIdentifier(s->conn, channel, strlen(channel));
	char sql[160];
	snprintf(sql, sizeof(sql), "LISTEN %s", ident ? ident : "\"\"");
	PQfreemem(ident);
	store_set_deadline(s, LISTEN_BOUND_MS);
	return store__run(s, sql, 0, NULL, NULL, NULL, "listen", e);
}

/* Hands every buffered notification to fn; how many there were. */
static int deliver(struct store *s, void (*fn)(void *arg, const char *payload), void *arg)
{
	int n = 0;
	PGnotify *note;
	while ((note = PQnotifies(s->conn)) != NULL) {
		fn(arg, note->extra ? note->extra : "");
		PQfreemem(note);
		n++;
	}
	return n;
}

int store_listen_wait(struct store *s, int timeout_ms, void (*fn)(void *arg, const char *payload),
                      void *arg, struct cof_err *e)
{
	int fd = PQsocket(s->conn);
	if (fd < 0 || PQstatus(s->conn) != CONNECTION_OK)
		return cof_err_set(e, COF_EUNAVAIL, "the notification connection is lost");
	/* Notifications a ping read on the way are handed on first, without waiting. */
	int early = deliver(s, fn, arg);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, early ? 0 : timeout_ms);
	if (n < 0 && errno != EINTR)
		return cof_err_set(e, COF_EUNAVAIL, "the notification connection is lost");
	if (n > 0 && !PQconsumeInput(s->conn)) {
		cof_err_detail(e, "listen: %s", PQerrorMessage(s->conn));
		return cof_err_set(e, COF_EUNAVAIL, "the notification connection is lost");
	}
	deliver(s, fn, arg);
	if (PQstatus(s->conn) != CONNECTION_OK)
		return cof_err_set(e, COF_EUNAVAIL, "the notification connection is lost");
	return 0;
}

int store_listen_ping(struct store *s, struct cof_err *e)
{
	store_set_deadline(s, LISTEN_BOUND_MS);
	return store__run(s, "SELECT 1", 0, NULL, NULL, NULL, "listener ping", e);
}

int store_identity(struct store *s, struct store_identity *out, struct cof_err *e)
{
	memset(out, 0, sizeof(*out));
	store_set_deadline(s, LISTEN_BOUND_MS);
	/* The timeline new WAL is written on (pg_walfile_name follows the insert timeline on a
	 * primary), and the cluster's identifier when this role may read it. */
	PGresult *r = store__exec(s,
	                          "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), "
	                          "CASE WHEN has_function_privilege('pg_control_system()', "
	                          "'EXECUTE') THEN (SELECT system_identifier::text FROM "
	                          "pg_control_system()) ELSE '' END",
	                          0, NULL, NULL, NULL, "identity", e);
	if (r == NULL)
		return e->code;
	out->timeline = strtoll(PQgetvalue(r, 0, 0), NULL, 16);
	col_str(r, 0, 1, out->system_id, sizeof(out->system_id));
	PQclear(r);
	return 0;
}
