/* freeze_other: a process freezes another one (runsc-ckpt's extension: a pid the caller may
 * ptrace). The target is a child blocked in nanosleep in a loop; it must keep running afterwards.
 * A second child that dropped to uid 1000 may not ptrace the target and gets EPERM.
 *
 * usage: freeze_other IMAGE
 * Prints "target=<pid>", "freeze=<ret> errno=<n>", "target_alive=<0|1>", "unprivileged=<ret> errno=<n>". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../include/ckpt.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	/* Shared page where the target counts its wakeups. */
	volatile long *ticks = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t target = fork();
	if (target == 0) {
		prctl(PR_SET_NAME, "freeze_target");
		for (;;) {
			struct timespec ts = {0, 2000000};
			nanosleep(&ts, NULL);
			(*ticks)++;
		}
	}
	printf("target=%d\n", target);
	while (*ticks < 3)
		usleep(1000);

	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open image");
		return 1;
	}
	long r = sys_checkpoint(CKPT_FREEZE, fd, target, 0);
	printf("freeze=%ld errno=%d\n", r, r < 0 ? errno : 0);
	/* The target must tick again: poll up to 5 s (a fixed 50 ms sample can miss it on a loaded
	 * machine; a target that never resumes fails either way). */
	long before = *ticks;
	for (int tries = 0; tries < 500 && *ticks == before; tries++)
		usleep(10000);
	printf("target_alive=%d\n", *ticks > before);
	fflush(stdout);

	pid_t unpriv = fork();
	if (unpriv == 0) {
		if (setgid(1000) != 0 || setuid(1000) != 0) {
			perror("setuid");
			_exit(3);
		}
		long r2 = sys_checkpoint(CKPT_FREEZE, 1, target, 0);
		printf("unprivileged=%ld errno=%d\n", r2, r2 < 0 ? errno : 0);
		fflush(stdout);
		_exit(0);
	}
	waitpid(unpriv, NULL, 0);
	kill(target, SIGKILL);
	waitpid(target, NULL, 0);
	return r == 0 ? 0 : 1;
}
