/* freeze_traced: one thread of the process sits in a ptrace stop (a child traces it with
 * PTRACE_SEIZE + PTRACE_INTERRUPT) while the main thread freezes the process into IMAGE. The
 * traced thread cannot run the freeze's task work, so the freeze records it from the outside.
 * Afterwards the tracer detaches and the thread runs on.
 *
 * usage: freeze_traced IMAGE
 * Prints "worker=<tid>", "freeze=<ret> errno=<n>", "progress=<0|1>". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

static volatile unsigned long counter;
static volatile pid_t worker_tid;

static void *spin(void *arg)
{
	(void)arg;
	worker_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		counter++;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY);
	pthread_t th;
	pthread_create(&th, NULL, spin, NULL);
	while (!worker_tid)
		usleep(1000);
	printf("worker=%d\n", worker_tid);
	fflush(stdout);

	int ready[2], done[2];
	if (pipe(ready) != 0 || pipe(done) != 0) {
		perror("pipe");
		return 1;
	}
	pid_t tracer = fork();
	if (tracer == 0) {
		if (ptrace(PTRACE_SEIZE, worker_tid, 0, 0) != 0 || ptrace(PTRACE_INTERRUPT, worker_tid, 0, 0) != 0) {
			perror("ptrace");
			_exit(1);
		}
		int status;
		if (waitpid(worker_tid, &status, __WALL) != worker_tid) {
			perror("waitpid");
			_exit(1);
		}
		char c = 1;
		if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) != 1)
			_exit(1);
		ptrace(PTRACE_DETACH, worker_tid, 0, 0);
		_exit(0);
	}
	char c;
	if (read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "tracer failed\n");
		return 1;
	}
	long r = freeze_into(argv[1]);
	if (write(done[1], &c, 1) != 1)
		return 1;
	waitpid(tracer, NULL, 0);
	/* The thread must advance (within 5 s). */
	printf("progress=%d\n", counters_advance(&counter, 1, 5000));
	return r == 0 ? 0 : 1;
}
