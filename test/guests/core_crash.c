// core_crash: forks a child that dies of a signal whose default action is "core", waits for it
// and prints how it ended, so the test sees WCOREDUMP from inside the sandbox.
//
//   core_crash segv            the child starts a second thread, then dereferences NULL in
//                              crash_here() (the test asks gdb for that name)
//   core_crash segv-nocore     the same with RLIMIT_CORE 0
//   core_crash segv-limit N    the same with RLIMIT_CORE N bytes
//   core_crash segv-both       two threads dereference NULL at the same moment
//   core_crash abort           the child calls abort()
//   core_crash exec PROG ARGS  the child execs PROG with GOTRACEBACK=crash (a Go guest that
//                              panics, say)
//
// Output: "child PID signaled SIG core C" (C = WCOREDUMP), or "child PID exited N".
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int idle_started;

static void *idle_thread(void *arg) {
	(void)arg;
	idle_started = 1;
	for (;;)
		pause();
	return NULL;
}

// crash_here dereferences NULL; noinline so that it is a frame of its own in the backtrace.
__attribute__((noinline)) static int crash_here(volatile int *p) {
	return *p + 1;
}

static pthread_barrier_t both;

static void *crash_thread(void *arg) {
	pthread_barrier_wait(&both);
	crash_here(arg);
	return NULL;
}

static void set_core_limit(rlim_t n) {
	struct rlimit rl = {n, n};
	if (setrlimit(RLIMIT_CORE, &rl) != 0) {
		perror("setrlimit");
		exit(3);
	}
}

static void child(int argc, char **argv) {
	const char *mode = argv[1];
	if (strcmp(mode, "exec") == 0) {
		setenv("GOTRACEBACK", "crash", 1);
		execv(argv[2], argv + 2);
		perror("execv");
		exit(4);
	}
	if (strcmp(mode, "abort") == 0)
		abort();
	if (strcmp(mode, "segv-both") == 0) {
		pthread_t th;
		pthread_barrier_init(&both, NULL, 2);
		if (pthread_create(&th, NULL, crash_thread, NULL) != 0) {
			perror("pthread_create");
			exit(5);
		}
		pthread_barrier_wait(&both);
		exit(crash_here(NULL));
	}
	if (strcmp(mode, "segv-nocore") == 0)
		set_core_limit(0);
	else if (strcmp(mode, "segv-limit") == 0 && argc > 2)
		set_core_limit(strtoull(argv[2], NULL, 10));
	else
		set_core_limit(RLIM_INFINITY);
	pthread_t th;
	if (pthread_create(&th, NULL, idle_thread, NULL) != 0) {
		perror("pthread_create");
		exit(5);
	}
	// The core should show the second thread in idle_thread, not still inside clone.
	while (!idle_started)
		sched_yield();
	exit(crash_here(NULL));
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: core_crash segv|segv-nocore|segv-limit N|abort|exec PROG...\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0)
		child(argc, argv);
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		perror("waitpid");
		return 1;
	}
	if (WIFSIGNALED(st))
		printf("child %d signaled %d core %d\n", pid, WTERMSIG(st), WCOREDUMP(st) ? 1 : 0);
	else
		printf("child %d exited %d\n", pid, WEXITSTATUS(st));
	return 0;
}
