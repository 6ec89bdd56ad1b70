/* hostile_stress: many freeze/thaw cycles (issue 13 item 6; test/stress_test.go, bench/stress.sh).
 *
 * usage: hostile_stress [-sync] cycles N IMAGE
 *          Freezes itself into IMAGE (IMAGE.b every other time) and at once thaws itself from it,
 *          N times: each thaw resumes
 *          the process at its freeze with the thaw's retval (the cycle number), so the loop goes on
 *          in the thawed process. Prints "cycles=N ok" (or what failed, and exits 1).
 *        hostile_stress [-sync] many N DIR [ROUNDS]
 *          Forks N processes at once; each freezes itself into DIR/p<k>.ckpt, thaws itself from
 *          it and exits 0 if its thaw returned k+1. Prints "many=N ok=M"; ROUNDS times (default 1).
 * With -sync it first warms up (2 cycles, or one round of N processes), prints "ready" and waits
 * for a file "go" in its working directory, and
 * prints "done" and waits for "end" afterwards (made from inside the sandbox), so that the test
 * can measure the sentry before and after. -stdin does the same, waiting for a line on stdin
 * instead of each file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

/* from_stdin: -stdin given: wait for a line on stdin instead of a file (bench/stress.sh). */
static int from_stdin;

static void waitfile(const char *name)
{
	if (from_stdin) {
		char c;
		while (read(0, &c, 1) == 1 && c != '\n')
			;
		return;
	}
	for (int i = 0; i < 6000 && access(name, F_OK) != 0; i++)
		usleep(100000);
}

/* cycle freezes the process into path and thaws it from there with retval want; returns the
 * freeze's result in the thawed process (want), or -1 after printing why. */
static long cycle(const char *path, long want)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		printf("open %s: %s\n", path, strerror(errno));
		return -1;
	}
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	if (r == 0) {
		long t = sys_checkpoint(CKPT_THAW, fd, -1, want);
		printf("thaw %ld failed: %ld errno=%d\n", want, t, errno);
		return -1;
	}
	close(fd);
	if (r != want) {
		printf("freeze %ld returned %ld errno=%d\n", want, r, r < 0 ? errno : 0);
		return -1;
	}
	return r;
}

/* run_cycles runs n cycles numbered from first+1, alternating between image and image.b. */
static int run_cycles(const char *image, long first, long n)
{
	/* The counter lives in the image: every thaw brings back the value it had at its freeze.
	 * Two images take turns: a thawed process's memory is mapped lazily from the image it came
	 * from, so truncating that one (O_TRUNC) would kill it with SIGBUS (docs/security.md). */
	char other[4096];
	snprintf(other, sizeof other, "%s.b", image);
	for (long i = first; i < first + n; i++)
		if (cycle(i % 2 ? other : image, i + 1) < 0)
			return -1;
	return 0;
}

/* run_many forks n processes at once, each doing one cycle into dir/p<k>.ckpt, and returns how
 * many succeeded. */
static int run_many(int n, const char *dir)
{
	int ok = 0, forked = 0;
	for (int k = 0; k < n; k++) {
		pid_t pid = fork();
		if (pid < 0) {
			printf("fork: %s\n", strerror(errno));
			break;
		}
		forked++;
		if (pid == 0) {
			char path[4096];
			snprintf(path, sizeof path, "%s/p%d.ckpt", dir, k);
			long r = cycle(path, k + 1);
			unlink(path);
			_exit(r == k + 1 ? 0 : 1);
		}
	}
	int st;
	while (wait(&st) > 0)
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	return forked == n ? ok : -1;
}

int main(int argc, char **argv)
{
	from_stdin = argc > 1 && strcmp(argv[1], "-stdin") == 0;
	int sync = argc > 1 && (strcmp(argv[1], "-sync") == 0 || from_stdin);
	if (sync)
		argc--, argv++;
	if (argc < 4) {
		fprintf(stderr, "usage: %s [-sync] cycles N IMAGE | many N DIR [ROUNDS]\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[2]);
	int cycles = strcmp(argv[1], "cycles") == 0;
	int rounds = argc > 4 ? atoi(argv[4]) : 1;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (sync) {
		/* Warm up first, so that what the sandbox caches for good (the gofer's open files, the
		 * platform's pooled stub processes) is part of the baseline. */
		if (cycles ? run_cycles(argv[3], 0, 2) < 0 : run_many(n, argv[3]) != n) {
			printf("warm-up failed\n");
			return 1;
		}
		printf("ready\n");
		waitfile("go");
	}
	int rc = 0;
	if (cycles) {
		if (run_cycles(argv[3], sync ? 2 : 0, n) < 0)
			rc = 1;
		else
			printf("cycles=%d ok\n", n);
	} else {
		for (int r = 0; r < rounds; r++) {
			int ok = run_many(n, argv[3]);
			printf("many=%d ok=%d\n", n, ok);
			if (ok != n)
				rc = 1;
		}
	}
	if (sync) {
		printf("done\n");
		waitfile("end");
	}
	return rc;
}
