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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "coffer_shared.h"

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
	int64_t until = coffer_mono_ms() + timeout_ms;
	for (;;) {
		if (reap(child, &st))
			return st;
		if (kill(child, 0) != 0 && errno == ESRCH)
			return st;
		if (coffer_mono_ms() >= until) {
			kill(child, SIGKILL);
			waitpid(child, &st, 0);
			return st;
		}
		forward(child);
		nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
	}
}

/* What the supervisor holds while the program runs. */
struct supervisor {
	struct cli *c;           /* the command line */
	struct cli_target t;     /* what it resolves */
	coffer_fallback fb;      /* the fallback snapshot's options */
	int signal_mode;         /* 0: restart on a change; else the signal sent instead */
	int64_t restart_timeout; /* ms the program gets to stop before SIGKILL */
	int64_t jitter;          /* up to this many ms of random delay before acting on a change */
	pid_t child;             /* the program */
	coffer_watch *w;         /* the watch; NULL: none now */
	int64_t revision;        /* the newest revision known */
	int64_t due;             /* when to act on the changes seen; 0: none pending */
	int64_t reopen_at;       /* when to open a watch refused for the token's limit; 0: no */
};

/* The options of run --watch: 0, or a usage error's status. */
static int read_options(struct supervisor *s)
{
	struct cli *c = s->c;
	int rc;
	if ((rc = cli_target(c, &s->t)) || (rc = cli_fallback(c, &s->fb)))
		return rc;
	s->signal_mode = on_change_of(cli_opt(c, "--on-change"));
	if (s->signal_mode < 0)
		return cli_usage_error(c,
		                       "--on-change takes restart or signal:NAME (HUP, USR1, ...)");
	s->restart_timeout = 10000;
	const char *rt = cli_opt(c, "--restart-timeout"), *rj = cli_opt(c, "--restart-jitter");
	if ((rt && !cli_duration_ms(rt, &s->restart_timeout)) ||
	    (rj && !cli_duration_ms(rj, &s->jitter)))
		return cli_usage_error(c, "--restart-timeout and --restart-jitter take durations "
		                          "(10s, 500ms, 2m)");
	return 0;
}

/* Resolves, and starts the program with its secrets, catching the signals it forwards first (so
 * none is lost in between) and adopting the program's orphans (as tini does when it is a
 * container's PID 1): 0, or the status to exit with. */
static int first_start(struct supervisor *s)
{
	coffer_snapshot *snap = NULL;
	char **env = NULL;
	int rc = cli_resolve(s->c, &s->t, &s->fb, &snap);
	if (rc == 0)
		rc = cli_program_env(s->c, snap, &env);
	s->revision = coffer_snapshot_revision(snap);
	coffer_snapshot_free(snap);
	if (rc)
		return rc;
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, NULL);
	s->child = start_program(s->c, env);
	cli_env_free(env);
	if (s->child < 0) {
		fprintf(stderr, "coffer: cannot start %s: %s\n", s->c->command[0], strerror(errno));
		return 127;
	}
	return 0;
}

/* Opens the watch from the newest revision known; whether it is open. */
static bool open_watch(struct supervisor *s, coffer_error *err)
{
	s->w = NULL;
	if (coffer_watch_open(s->c->ch, s->t.project, s->t.env, (coffer_version)s->t.version, NULL,
	                      0, s->revision, &s->w, err) != 0)
		s->w = NULL;
	return s->w != NULL;
}

/* The secrets changed: resolve them and restart (or signal) the program. Returns -1 to go on,
 * else the status coffer exits with (asked to stop meanwhile, or the program cannot start). */
static int act_on_change(struct supervisor *s)
{
	struct cli *c = s->c;
	coffer_snapshot *fresh = NULL;
	char **env = NULL;
	int status = -1;
	if (cli_resolve(c, &s->t, &s->fb, &fresh) != 0 || cli_program_env(c, fresh, &env) != 0) {
		fprintf(stderr, "coffer: the secrets changed but cannot be resolved; the program "
		                "keeps running with the ones it has\n");
	} else if (s->signal_mode) {
		fprintf(stderr, "coffer: secrets changed (revision %lld): signalling %s\n",
		        (long long)coffer_snapshot_revision(fresh), c->command[0]);
		kill(s->child, s->signal_mode);
	} else {
		fprintf(stderr, "coffer: secrets changed (revision %lld): restarting %s\n",
		        (long long)coffer_snapshot_revision(fresh), c->command[0]);
		int old_st = stop_program(s->child, s->restart_timeout);
		if (stop_asked) { /* asked to stop meanwhile: not started again */
			status = status_of(old_st);
		} else if ((s->child = start_program(c, env)) < 0) {
			fprintf(stderr, "coffer: cannot start %s: %s\n", c->command[0],
			        strerror(errno));
			status = 127;
		}
	}
	cli_env_free(env);
	coffer_snapshot_free(fresh);
	return status;
}

/* Waits up to wait ms for the watch: a change makes one due (after the settling time and the
 * jitter); a refusal closes the watch, to be tried again later when the token's streams were
 * full, and for good otherwise (a revoked token's fallback snapshot is deleted too). */
static void follow_watch(struct supervisor *s, int wait)
{
	coffer_change change;
	coffer_error err;
	int got = coffer_watch_next(s->w, wait, &change, &err);
	if (got > 0 && s->due == 0)
		s->due = coffer_mono_ms() + SETTLE_MS + coffer_random_below(s->jitter);
	if (got >= 0)
		return;
	if (err.code == COFFER_RESOURCE_EXHAUSTED) {
		/* The token's watches are full on that replica: a fleet that grew, or streams that
		 * moved after a replica restarted. Try again later, from the last revision seen,
		 * so that no change is missed meanwhile. */
		int64_t in = REOPEN_MS + coffer_random_below(REOPEN_MS);
		fprintf(stderr, "coffer: the watch was refused: %s; trying again in %lld s\n",
		        err.message, (long long)(in / 1000));
		s->revision = coffer_watch_revision(s->w);
		s->reopen_at = coffer_mono_ms() + in;
	} else {
		fprintf(stderr,
		        "coffer: the watch was refused: %s; the program runs without updates\n",
		        err.message);
		/* A refused token must not keep working offline. */
		if (s->fb.path &&
		    (err.code == COFFER_UNAUTHENTICATED || err.code == COFFER_PERMISSION_DENIED) &&
		    unlink(s->fb.path) == 0)
			fprintf(stderr,
			        "coffer: the token was refused: the fallback snapshot %s is "
			        "deleted\n",
			        s->fb.path);
	}
	coffer_watch_close(s->w);
	s->w = NULL;
}

int cli_supervise(struct cli *c)
{
	struct supervisor s = {.c = c};
	int rc;
	if ((rc = read_options(&s)) || (rc = first_start(&s)))
		return rc;
	coffer_error err;
	if (!s.fb.only && !open_watch(&s, &err))
		fprintf(stderr, "coffer: cannot watch: %s; the program runs without updates\n",
		        err.message);
	for (;;) {
		forward(s.child);
		int st = 0;
		if (reap(s.child, &st)) { /* it ended by itself */
			coffer_watch_close(s.w);
			return status_of(st);
		}
		int64_t now = coffer_mono_ms();
		if (s.due && now >= s.due) {
			s.due = 0;
			int status = act_on_change(&s);
			if (status >= 0) {
				coffer_watch_close(s.w);
				return status;
			}
			continue;
		}
		int wait = TICK_MS;
		if (s.due && s.due - now < wait)
			wait = (int)(s.due - now);
		if (s.w == NULL && s.reopen_at && now >= s.reopen_at) {
			s.reopen_at = 0;
			open_watch(&s, &err);
		}
		if (s.w == NULL)
			nanosleep(&(struct timespec){0, (long)wait * 1000000L}, NULL);
		else
			follow_watch(&s, wait);
	}
}
