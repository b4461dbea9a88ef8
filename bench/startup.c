/*
 * startup - what a program pays for starting through coffer, paired against a baseline.
 *
 *   coffer-bench-startup [--rounds N] [--label L] BASELINE-CMD ... ; LABEL=CMD ... [; LABEL=CMD
 * ...]
 *
 * Each argument group (separated by a lone ";") is one command; the first is the baseline (for
 * example `true`), each later one starts with LABEL= (for example `run=coffer run -- true`).
 * Every round runs all the commands once, in a rotating order, each as a fresh process (fork,
 * exec, wait4): wall time from fork to its exit, and its CPU time (user + system, from wait4,
 * the exec'd program included). The overhead of a command is the median over rounds of its time
 * minus the baseline's in the same round, so that the noise of a shared machine mostly cancels.
 * A command that exits non-zero fails the run (a fast failure is not a fast start).
 *
 * Prints per command: median and p90 wall ms, median CPU ms, median paired overhead ms; and
 *   RESULT label=startup-LABEL wall_p50_ms=... wall_p90_ms=... cpu_p50_ms=... overhead_ms=...
 * Figures, not assertions: scripts/dev bench.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS   8
#define MAX_ROUNDS 1000

struct cmd {
	const char *label; /* "baseline" for the first */
	char **argv;       /* NULL-terminated, points into main's argv */
	double wall[MAX_ROUNDS];
	double cpu[MAX_ROUNDS];
	double over[MAX_ROUNDS]; /* wall minus the baseline's wall in the same round */
};

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static double tv_ms(struct timeval tv)
{
	return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

/* Runs argv once with stdout and stderr to /dev/null; its wall and CPU ms. 0, or -1 on failure. */
static int run_once(char **argv, double *wall, double *cpu)
{
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		FILE *null = freopen("/dev/null", "w", stdout);
		if (null == NULL || dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR)
			return -1;
	}
	*wall = now_ms() - t0;
	*cpu = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double quantile(const double *v, int n, double q)
{
	double s[MAX_ROUNDS];
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, cmp_double);
	int i = (int)(q * (n - 1) + 0.5);
	return s[i];
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: coffer-bench-startup [--rounds N] BASELINE... ; LABEL=CMD... [; ...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int rounds = 50;
	int i = 1;
	while (i < argc && strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i], "--") != 0) {
		if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			rounds = atoi(argv[i + 1]);
			i += 2;
		} else {
			usage();
		}
	}
	if (rounds < 3 || rounds > MAX_ROUNDS)
		usage();

	static struct cmd cmds[MAX_CMDS];
	int n = 0;
	while (i < argc) {
		if (n == MAX_CMDS)
			usage();
		struct cmd *c = &cmds[n];
		c->label = "baseline";
		if (n > 0) {
			char *eq = strchr(argv[i], '=');
			if (eq == NULL || eq == argv[i])
				usage();
			*eq = '\0';
			c->label = argv[i];
			argv[i] = eq + 1;
		}
		c->argv = &argv[i];
		while (i < argc && strcmp(argv[i], ";") != 0)
			i++;
		if (i < argc)
			argv[i++] = NULL; /* ends this command's argv */
		if (c->argv[0] == NULL || c->argv[0][0] == '\0')
			usage();
		n++;
	}
	if (n < 2)
		usage();

	/* One unmeasured round: the page cache and the server's caches are warm for everyone. */
	for (int k = 0; k < n; k++) {
		double w, u;
		if (run_once(cmds[k].argv, &w, &u) != 0) {
			fprintf(stderr, "coffer-bench-startup: %s: exits non-zero\n",
			        cmds[k].argv[0]);
			return 1;
		}
	}
	for (int r = 0; r < rounds; r++) {
		for (int j = 0; j < n; j++) {
			struct cmd *c = &cmds[(j + r) % n];
			if (run_once(c->argv, &c->wall[r], &c->cpu[r]) != 0) {
				fprintf(stderr, "coffer-bench-startup: %s: exits non-zero\n",
				        c->label);
				return 1;
			}
		}
		for (int k = 0; k < n; k++)
			cmds[k].over[r] = cmds[k].wall[r] - cmds[0].wall[r];
	}

	printf("%d paired rounds; overhead = median of (command - baseline) in the same round\n",
	       rounds);
	for (int k = 0; k < n; k++) {
		struct cmd *c = &cmds[k];
		double p50 = quantile(c->wall, rounds, 0.5), p90 = quantile(c->wall, rounds, 0.9);
		double cpu = quantile(c->cpu, rounds, 0.5), over = quantile(c->over, rounds, 0.5);
		printf("  %-14s wall p50 %6.2f ms  p90 %6.2f ms  cpu %6.2f ms  overhead %6.2f ms\n",
		       c->label, p50, p90, cpu, over);
		printf("RESULT label=startup-%s wall_p50_ms=%.2f wall_p90_ms=%.2f cpu_p50_ms=%.2f "
		       "overhead_ms=%.2f\n",
		       c->label, p50, p90, cpu, over);
	}
	return 0;
}
