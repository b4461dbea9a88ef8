/*
 * keys_cmd.c - cofferd keys rotate|rewrap|rekey|verify|status: keyring maintenance from the
 * command line, with progress on stderr for the long walks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "commands.h"
#include "crypt.h"
#include "coffer_limits.h"
#include "keys.h"
#include "session.h"

#define CONNECT_WAIT_SECONDS 30

/* What a long walk has told so far. */
struct progress {
	const char *what; /* "cofferd keys rewrap" */
	const char *unit; /* "value rows" */
	double start;     /* monotonic seconds */
	double last;      /* when progress was last printed */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* keys_progress_fn: one line on stderr, at most once a second. */
static void show_progress(void *arg, int64_t done, int64_t total)
{
	struct progress *p = arg;
	double t = now_s();
	if (t - p->last < 1.0)
		return;
	p->last = t;
	double rate = t > p->start ? (double)done / (t - p->start) : 0;
	double pct = total > 0 ? 100.0 * (double)done / (double)total : 100.0;
	fprintf(stderr, "%s: %" PRId64 " of %" PRId64 " %s (%.0f%%), %.0f/s", p->what, done, total,
	        p->unit, pct, rate);
	if (rate > 0 && total > done)
		fprintf(stderr, ", about %.0f s left", (double)(total - done) / rate);
	fputc('\n', stderr);
}

/* The keyring and a session of its own; 0, or 1 with the error printed. */
static int open_keys(const struct settings *cfg, const char *what, struct session *ss)
{
	struct cof_err e = {0};
	struct crypt_keyring *kr = NULL;
	*ss = (struct session){0};
	if (crypt_keyring_new(cfg->root_key_file, &kr, &e) != 0 ||
	    session_connect(cfg->database_url, kr, CONNECT_WAIT_SECONDS, ss, &e) != 0 ||
	    keys_load(ss, false, &e) != 0 || keys_load_token_key(ss, &e) != 0) {
		fprintf(stderr, "%s: %s%s%s\n", what, e.msg, e.detail[0] ? ": " : "", e.detail);
		session_close(ss);
		crypt_keyring_free(kr);
		ss->kr = NULL;
		return 1;
	}
	return 0;
}

static void close_keys(struct session *ss)
{
	struct crypt_keyring *kr = ss->kr;
	session_close(ss);
	crypt_keyring_free(kr);
}

static int failed(const char *what, const struct cof_err *e)
{
	fprintf(stderr, "%s: %s%s%s\n", what, e->msg, e->detail[0] ? ": " : "", e->detail);
	return 1;
}

int cmd_keys_rotate(const struct settings *cfg, const struct keys_args *a)
{
	(void)a;
	static const char what[] = "cofferd keys rotate";
	struct session ss;
	struct cof_err e = {0};
	int32_t term = 0;
	if (open_keys(cfg, what, &ss))
		return 1;
	int status = keys_rotate(&ss, &term, &e) ? failed(what, &e) : 0;
	if (status == 0)
		printf("keyring term %d is active; new writes use it. Run 'cofferd keys rewrap' to "
		       "move older values onto it.\n",
		       (int)term);
	close_keys(&ss);
	return status;
}

int cmd_keys_rewrap(const struct settings *cfg, const struct keys_args *a)
{
	static const char what[] = "cofferd keys rewrap";
	struct session ss;
	struct cof_err e = {0};
	if (open_keys(cfg, what, &ss))
		return 1;
	struct progress p = {what, "value rows", now_s(), now_s()};
	struct keys_walk_opts o = {a->batch_size, a->max_batches, a->batch_delay_ms, show_progress,
	                           &p};
	int64_t moved = 0, bad = 0;
	int status = keys_rewrap(&ss, &o, &moved, &bad, &e) ? failed(what, &e) : 0;
	if (status == 0) {
		double secs = now_s() - p.start;
		printf("re-sealed %" PRId64 " value row%s under term %d in %.1f s%s; %" PRId64
		       " did not open\n",
		       moved, moved == 1 ? "" : "s", (int)keys_active_term(&ss), secs,
		       a->max_batches ? " (stopped after --max-batches)" : "", bad);
		status = bad ? 1 : 0;
	}
	close_keys(&ss);
	return status;
}

int cmd_keys_rekey(const struct settings *cfg, const struct keys_args *a)
{
	static const char what[] = "cofferd keys rekey";
	if (a->new_root_key_file == NULL) {
		fprintf(stderr, "%s needs --new-root-key-file\n", what);
		return 2;
	}
	struct session ss;
	struct cof_err e = {0};
	struct crypt_keyring *next = NULL;
	if (open_keys(cfg, what, &ss))
		return 1;
	struct progress p = {what, "keyring terms", now_s(), now_s()};
	struct keys_walk_opts o = {.progress = show_progress, .progress_arg = &p};
	int status =
	        crypt_keyring_new(a->new_root_key_file, &next, &e) || keys_rekey(&ss, next, &o, &e)
	                ? failed(what, &e)
	                : 0;
	if (status == 0)
		printf("the keyring is now wrapped by the root key in %s: restart every cofferd "
		       "with "
		       "COFFER_ROOT_KEY_FILE pointing at it\n",
		       a->new_root_key_file);
	crypt_keyring_free(next);
	close_keys(&ss);
	return status;
}

/* Prints value rows per term. */
static int print_terms(struct session *ss, const char *what)
{
	int32_t terms[LIMIT_KEY_TERMS];
	int64_t counts[LIMIT_KEY_TERMS];
	int n = 0;
	struct cof_err e = {0};
	if (keys_status(ss, terms, counts, LIMIT_KEY_TERMS, &n, &e) != 0)
		return failed(what, &e);
	for (int i = 0; i < n; i++)
		printf("term %d%s: %" PRId64 " value row%s\n", (int)terms[i],
		       terms[i] == keys_active_term(ss) ? " (active)" : "", counts[i],
		       counts[i] == 1 ? "" : "s");
	return 0;
}

int cmd_keys_status(const struct settings *cfg, const struct keys_args *a)
{
	(void)a;
	static const char what[] = "cofferd keys status";
	struct session ss;
	if (open_keys(cfg, what, &ss))
		return 1;
	int status = print_terms(&ss, what);
	close_keys(&ss);
	return status;
}

int cmd_keys_verify(const struct settings *cfg, const struct keys_args *a)
{
	static const char what[] = "cofferd keys verify";
	struct session ss;
	struct cof_err e = {0};
	if (open_keys(cfg, what, &ss))
		return 1;
	int status = print_terms(&ss, what);
	struct progress p = {what, "value rows", now_s(), now_s()};
	struct keys_walk_opts o = {
	        .batch_size = a->batch_size, .progress = show_progress, .progress_arg = &p};
	int64_t ok = 0, bad = 0;
	if (status == 0)
		status = keys_verify(&ss, &o, &ok, &bad, &e) ? failed(what, &e) : 0;
	if (status == 0) {
		printf("%" PRId64 " value row%s open, %" PRId64 " do not (%.1f s)\n", ok,
		       ok == 1 ? "" : "s", bad, now_s() - p.start);
		status = bad ? 1 : 0;
	}
	close_keys(&ss);
	return status;
}
