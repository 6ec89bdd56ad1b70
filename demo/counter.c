/*
 * counter: the runsc-ckpt demo guest. It counts, keeping its state in memory (a heap buffer, a
 * global, a local), freezes itself into counter.ckpt half-way, goes on counting and is then killed
 * (SIGKILL, as a crash would). Thawing the image in a new sandbox (checkpt -r counter.ckpt)
 * resumes it inside sys_checkpoint, which then returns 1 instead of 0, and it finishes the count
 * from where it froze.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"

static long total; /* survives in the image's data segment */

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10;
	int thawed = 0;
	char *note = malloc(64); /* survives in the image's heap */
	snprintf(note, 64, "started as pid %d", (int)getpid());

	for (int i = 1; i <= n; i++) {
		total += i;
		printf("counter: i=%d total=%ld (%s)\n", i, total, note);
		fflush(stdout);
		if (i == n / 2 + 2 && !thawed) {
			printf("counter: killed at i=%d (SIGKILL)\n", i);
			fflush(stdout);
			kill(getpid(), SIGKILL);
		}
		if (i == n / 2) {
			int fd = open("counter.ckpt", O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd < 0) {
				perror("open counter.ckpt");
				return 1;
			}
			long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
			if (r < 0) {
				perror("sys_checkpoint(CKPT_FREEZE)");
				return 1;
			}
			close(fd);
			if (r == 0) {
				printf("counter: froze into counter.ckpt at i=%d; counting on\n", i);
				continue;
			}
			/* r == 1: this is the thawed copy, in a new sandbox and a new process. */
			thawed = 1;
			printf("counter: thawed from counter.ckpt (sys_checkpoint returned %ld), now pid %d; continuing\n",
			       r, (int)getpid());
		}
	}
	printf("counter: done, total=%ld\n", total);
	return total == (long)n * (n + 1) / 2 ? 0 : 3;
}
