/* tree_stopped_refuse: leaves a child in a stop that a tree checkpoint cannot recreate, creates
 * the file "ready" in the working directory and waits for ever.
 *
 *   ptrace: the child (sleeping in a loop) is attached with PTRACE_ATTACH and left in the
 *           resulting ptrace stop; this process, its tracer, waits.
 *   vfork:  this process vforks; the child creates "ready" and pauses without exec or exit, so
 *           this process sits in vfork's wait for it.
 *   vforkexit: as vfork, but the child exits 1.5 s after "ready"; this process then pauses.
 *
 * usage: tree_stopped_refuse ptrace|vfork|vforkexit */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

static void ready(void)
{
	int fd = open("ready", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "ptrace") == 0) {
		pid_t child = fork_dying_with_parent();
		if (child == 0) {
			for (;;)
				usleep(10000);
		}
		if (ptrace(PTRACE_ATTACH, child, 0, 0) != 0) {
			perror("PTRACE_ATTACH");
			return 1;
		}
		int status;
		if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) {
			fprintf(stderr, "the tracee did not stop: %#x\n", status);
			return 1;
		}
		ready();
		for (;;)
			pause();
	}
	if (argc == 2 && strcmp(argv[1], "vfork") == 0) {
		pid_t child = vfork();
		if (child == 0) {
			ready();
			for (;;)
				pause();
		}
		return 1; /* Not reached while the child pauses. */
	}
	if (argc == 2 && strcmp(argv[1], "vforkexit") == 0) {
		pid_t child = vfork();
		if (child == 0) {
			ready();
			usleep(1500000);
			_exit(0);
		}
		for (;;)
			pause();
	}
	fprintf(stderr, "usage: tree_stopped_refuse ptrace|vfork|vforkexit\n");
	return 2;
}
