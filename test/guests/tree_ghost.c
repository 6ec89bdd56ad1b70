// tree_ghost LOG: processes in a session and process groups whose leaders have exited, for
// TestTreeGhostLeadersOCI. The init (pid 1) forks a daemon the classic way: A (pid 2) calls
// setsid, forks B (pid 3) and exits, so B, reparented to the init, is in session and group 2 led by
// nobody; B forks C (pid 4), in the same session and group. Then the init forks P (pid 5), which
// makes its own group, forks Q (pid 6) into it and exits: Q, reparented to the init, is in group 5
// of the init's session, led by nobody. The init reaps A and P and prints "ready".
// After the restore, each of B, C and Q logs, on SIGUSR1 (the test signals the groups -2 and -5),
// its session and group ("B in session 2 ok", ...), and the init on SIGUSR1 checks that it has no
// unexpected child to reap (a ghost leader left behind would be one).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree_log.h"

static void report(const char *who, pid_t sid, pid_t pgid) {
	for (;;) {
		waitusr1();
		char seen[64];
		snprintf(seen, sizeof seen, "session %d group %d", (int)getsid(0), (int)getpgrp());
		char what[64];
		snprintf(what, sizeof what, "in session %d group %d", (int)sid, (int)pgid);
		logline(who, what, getsid(0) == sid && getpgrp() == pgid, seen);
	}
}

int main(int argc, char **argv) {
	tree_log_start(argc, argv, "tree_ghost");
	int up[2];
	if (pipe(up) != 0)
		die("pipe");

	pid_t a = fork();
	if (a < 0)
		die("fork");
	if (a == 0) {
		if (setsid() < 0)
			die("setsid");
		pid_t leader = getpid();
		pid_t b = fork();
		if (b < 0)
			die("fork");
		if (b == 0) {
			pid_t c = fork();
			if (c < 0)
				die("fork");
			if (c == 0) {
				if (write(up[1], "c", 1) != 1)
					die("write");
				report("C", leader, leader);
			}
			if (write(up[1], "b", 1) != 1)
				die("write");
			report("B", leader, leader);
		}
		_exit(0);
	}
	if (waitpid(a, NULL, 0) != a)
		die("waitpid A");

	pid_t p = fork();
	if (p < 0)
		die("fork");
	if (p == 0) {
		if (setpgid(0, 0) != 0)
			die("setpgid");
		pid_t group = getpid();
		pid_t q = fork();
		if (q < 0)
			die("fork");
		if (q == 0) {
			if (write(up[1], "q", 1) != 1)
				die("write");
			report("Q", getsid(0), group);
		}
		_exit(0);
	}
	if (waitpid(p, NULL, 0) != p)
		die("waitpid P");
	char buf[3];
	for (int got = 0; got < 3;) {
		ssize_t n = read(up[0], buf, sizeof buf);
		if (n <= 0)
			die("read");
		got += n;
	}
	printf("ready\n");
	for (;;) {
		waitusr1();
		errno = 0;
		pid_t w = waitpid(-1, NULL, WNOHANG);
		char seen[64];
		snprintf(seen, sizeof seen, "waitpid %d errno %d", (int)w, errno);
		logline("init", "has no child to reap", w == 0, seen);
	}
}
