/* tree_stopped_wait: a parent that watches its stopped child with waitpid(WUNTRACED|WCONTINUED).
 * It forks a child that sleeps in a loop, stops it with SIGSTOP and logs to LOG "child PID", then
 * every state change waitpid reports: "stopped SIG", "continued", or "ended STATUS".
 *
 * usage: tree_stopped_wait LOG */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: tree_stopped_wait LOG\n");
		return 2;
	}
	FILE *log = fopen(argv[1], "a");
	if (log == NULL) {
		perror("fopen");
		return 1;
	}
	pid_t c = fork_dying_with_parent();
	if (c == 0) {
		for (;;)
			usleep(10000);
	}
	fprintf(log, "child %d\n", (int)c);
	fflush(log);
	if (kill(c, SIGSTOP) != 0) {
		perror("kill");
		return 1;
	}
	for (;;) {
		int st;
		pid_t r = waitpid(c, &st, WUNTRACED | WCONTINUED);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(log, "waitpid errno %d\n", errno);
			fflush(log);
			for (;;)
				pause();
		}
		if (WIFSTOPPED(st))
			fprintf(log, "stopped %d\n", WSTOPSIG(st));
		else if (WIFCONTINUED(st))
			fprintf(log, "continued\n");
		else
			fprintf(log, "ended %#x\n", st);
		fflush(log);
	}
}
