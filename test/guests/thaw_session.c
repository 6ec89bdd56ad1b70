/* thaw_session: does a thaw give the program back its own session or process group?
 *
 * usage: thaw_session IMAGE session|group
 *
 * A child makes itself a session leader (setsid) or a process group leader (setpgid(0, 0)), freezes
 * itself into IMAGE and kills itself (the parent prints "frozen" and exits 0). The thawed child
 * (r=1) prints "r=1 sid_leader=<0|1> pgid_leader=<0|1>": whether it leads its session and its
 * process group, as it did when it froze. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../include/ckpt.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE session|group\n", argv[0]);
		return 2;
	}
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open image");
		return 2;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 2;
	}
	if (child > 0) {
		int st;
		waitpid(child, &st, 0);
		printf(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? "frozen\n" : "child status %#x\n", st);
		return 0;
	}
	if (strcmp(argv[2], "session") == 0 ? setsid() < 0 : setpgid(0, 0) < 0) {
		perror("setsid/setpgid");
		return 2;
	}
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	if (r == 0)
		kill(getpid(), SIGKILL);
	pid_t me = getpid();
	printf("r=%ld sid_leader=%d pgid_leader=%d\n", r, getsid(0) == me, getpgrp() == me);
	return 0;
}
