/*
 * supervise.c - coffer run --watch: the program runs with its secrets and starts again with the
 * new ones when they change.
 *
 * coffer resolves, starts the program as its child (secrets in its environment, never the token),
 * and watches (project, environment, version). A change — or a burst of them, folded — is
 * followed, after a random delay up to --restart-jitter (so that a fleet watching the same
 * environment does not restart at once), by a new resolve and then either a restart (SIGTERM,
 * SIGKILL after --restart-timeout, and the program again with the new environment) or, with
 * --on-change signal:NAME, that signal. Signals sent to coffer (TERM, INT, HUP, QUIT, USR1, USR2)
 * go to the program; when the program exits by itself, coffer exits with its status, and after
 * TERM, INT or QUIT the program is never started again (not even by a restart under way). While
 * the watch reconnects, or if it is refused, the program keeps running; a refused token deletes
 * the fallback snapshot. coffer is the subreaper of what the program starts, and reaps it (it may
 * be a container's PID 1).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* A change waits this long for more before it is acted on: a burst gives one restart. A second
 * covers a script that rotates several secrets one call at a time. */
#define SETTLE_MS 1000
/* How often the loop looks at signals and the program between changes. */
#define TICK_MS 100
/* A watch refused for the token's limit is tried again after this long, plus up to as much. */
#define REOPEN_MS 30000

static volatile sig_atomic_t pending[NSIG];
/* A signal that asks to stop (TERM, INT, QUIT) came: the program is not started again. */
static volatile sig_atomic_t stop_asked;

static void on_signal(int sig)
{
	pending[sig] = 1;
	if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
		stop_asked = sig;
}

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int64_t random_below(int64_t cap)
{
	uint64_t r = 0;
	if (cap <= 0 || getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return 0;
	return (int64_t)(r % (uint64_t)cap);
}

static const struct {
	const char *name;
	int sig;
} signals[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},  {"TERM", SIGTERM},
               {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}};

/* restart (0), or signal:NAME (its number); -1 when it does not parse. */
static int on_change_of(const char *s)
{
	if (s == NULL || strcmp(s, "restart") == 0)
		return 0;
	if (strncmp(s, "signal:", 7) != 0)
		return -1;
	const char *name = s + 7;
	if (strncmp(name, "SIG", 3) == 0)
		name += 3;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (strcmp(signals[i].name, name) == 0)
			return signals[i].sig;
	return -1;
}

/* The program's exit status as coffer's. */
static int status_of(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
}

static pid_t start_program(struct cli *c, char **env)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
			signal(forwarded[i], SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvpe(c->command[0], c->command, env);
		fprintf(stderr, "coffer: cannot run %s: %s\n", c->command[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Forwards the signals that arrived to the program (which decides whether to stop). */
static void forward(pid_t child)
{
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
		int sig = forwarded[i];
		if (!pending[sig])
			continue;
		pending[sig] = 0;
		if (child > 0)
			kill(child, sig);
	}
}

/* Reaps every child that has ended without blocking: the program's orphans come to coffer (it is
 * their subreaper, or PID 1 in a container) and must not pile up as zombies. Whether `child`
 * was among them (its wait status into *st). */
static bool reap(pid_t child, int *st)
{
	bool ended = false;
	for (;;) {
		int s = 0;
		pid_t got = waitpid(-1, &s, WNOHANG);
		if (got <= 0)
			return ended;
		if (got == child) {
			*st = s;
			ended = true;
		}
	}
}

/* Stops the program (SIGTERM, then SIGKILL after timeout_ms); its wait status. */
static int stop_program(pid_t child, int64_t timeout_ms)
{
	int st = 0;
	kill(child, SIGTERM);
	int64_t until = now_ms() + timeout_ms;
	for (;;) {
		if (reap(child, &st))
			return st;
		if (kill(child, 0) != 0 && errno == ESRCH)
			return st;
		if (now_ms() >= until) {
			kill(child, SIGKILL);
			waitpid(child, &st, 0);
			return st;
		}
		forward(child);
		nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
	}
}

int cli_supervise(struct cli *c)
{
	struct cli_target t;
	coffer_fallback fb;
	int rc;
	if ((rc = cli_target(c, &t)) || (rc = cli_fallback(c, &fb)))
		return rc;
	int signal_mode = on_change_of(cli_opt(c, "--on-change"));
	if (signal_mode < 0)
		return cli_usage_error(c,
		                       "--on-change takes restart or signal:NAME (HUP, USR1, ...)");
	int64_t restart_timeout = 10000, jitter = 0;
	const char *rt = cli_opt(c, "--restart-timeout"), *rj = cli_opt(c, "--restart-jitter");
	if ((rt && !cli_duration_ms(rt, &restart_timeout)) || (rj && !cli_duration_ms(rj, &jitter)))
		return cli_usage_error(c, "--restart-timeout and --restart-jitter take durations "
		                          "(10s, 500ms, 2m)");
	coffer_snapshot *snap = NULL;
	if ((rc = cli_resolve(c, &t, &fb, &snap)))
		return rc;
	char **env = NULL;
	rc = cli_program_env(c, snap, &env);
	int64_t revision = coffer_snapshot_revision(snap);
	coffer_snapshot_free(snap);
	if (rc)
		return rc;
	/* The program's orphans are reparented to coffer, which reaps them (as tini does when it is
	 * a container's PID 1). */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	/* Signals are caught before the program starts, so none is lost in between. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, NULL);
	pid_t child = start_program(c, env);
	cli_env_free(env);
	if (child < 0) {
		fprintf(stderr, "coffer: cannot start %s: %s\n", c->command[0], strerror(errno));
		return 127;
	}
	coffer_watch *w = NULL;
	coffer_error err;
	if (fb.only || coffer_watch_open(c->ch, t.project, t.env, (coffer_version)t.version, NULL,
	                                 0, revision, &w, &err) != 0) {
		if (!fb.only)
			fprintf(stderr,
			        "coffer: cannot watch: %s; the program runs without updates\n",
			        err.message);
		w = NULL;
	}
	int64_t due = 0;       /* when to act on the changes seen; 0: none pending */
	int64_t reopen_at = 0; /* when to open a watch refused for the token's limit again */
	for (;;) {
		forward(child);
		int st = 0;
		if (reap(child, &st)) { /* it ended by itself */
			coffer_watch_close(w);
			return status_of(st);
		}
		int64_t t0 = now_ms();
		if (due && t0 >= due) {
			due = 0;
			coffer_snapshot *fresh = NULL;
			char **next_env = NULL;
			if (cli_resolve(c, &t, &fb, &fresh) != 0 ||
			    cli_program_env(c, fresh, &next_env) != 0) {
				fprintf(stderr,
				        "coffer: the secrets changed but cannot be resolved; the "
				        "program keeps running with the ones it has\n");
			} else if (signal_mode) {
				fprintf(stderr,
				        "coffer: secrets changed (revision %lld): signalling %s\n",
				        (long long)coffer_snapshot_revision(fresh), c->command[0]);
				kill(child, signal_mode);
			} else {
				fprintf(stderr,
				        "coffer: secrets changed (revision %lld): restarting %s\n",
				        (long long)coffer_snapshot_revision(fresh), c->command[0]);
				int old_st = stop_program(child, restart_timeout);
				if (stop_asked) { /* asked to stop meanwhile: not started again */
					cli_env_free(next_env);
					coffer_snapshot_free(fresh);
					coffer_watch_close(w);
					return status_of(old_st);
				}
				child = start_program(c, next_env);
				if (child < 0) {
					fprintf(stderr, "coffer: cannot start %s: %s\n",
					        c->command[0], strerror(errno));
					cli_env_free(next_env);
					coffer_snapshot_free(fresh);
					coffer_watch_close(w);
					return 127;
				}
			}
			cli_env_free(next_env);
			coffer_snapshot_free(fresh);
			continue;
		}
		int wait = TICK_MS;
		if (due && due - t0 < wait)
			wait = (int)(due - t0);
		if (w == NULL && reopen_at && t0 >= reopen_at) {
			reopen_at = 0;
			if (coffer_watch_open(c->ch, t.project, t.env, (coffer_version)t.version,
			                      NULL, 0, revision, &w, &err) != 0)
				w = NULL;
		}
		if (w == NULL) {
			nanosleep(&(struct timespec){0, (long)wait * 1000000L}, NULL);
			continue;
		}
		coffer_change change;
		int got = coffer_watch_next(w, wait, &change, &err);
		if (got < 0 && err.code == COFFER_RESOURCE_EXHAUSTED) {
			/* The token's watches are full on that replica: a fleet that grew, or
			 * streams that moved after a replica restarted. Try again later, from the
			 * last revision seen, so that no change is missed meanwhile. */
			int64_t in = REOPEN_MS + random_below(REOPEN_MS);
			fprintf(stderr,
			        "coffer: the watch was refused: %s; trying again in %lld s\n",
			        err.message, (long long)(in / 1000));
			revision = coffer_watch_revision(w);
			coffer_watch_close(w);
			w = NULL;
			reopen_at = now_ms() + in;
		} else if (got < 0) {
			fprintf(stderr,
			        "coffer: the watch was refused: %s; the program runs without "
			        "updates\n",
			        err.message);
			/* A refused token must not keep working offline. */
			if (fb.path &&
			    (err.code == COFFER_UNAUTHENTICATED ||
			     err.code == COFFER_PERMISSION_DENIED) &&
			    unlink(fb.path) == 0)
				fprintf(stderr,
				        "coffer: the token was refused: the fallback snapshot "
				        "%s is deleted\n",
				        fb.path);
			coffer_watch_close(w);
			w = NULL;
		} else if (got > 0 && due == 0) {
			due = now_ms() + SETTLE_MS + random_below(jitter);
		}
	}
}
