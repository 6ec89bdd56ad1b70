/* thaw_traced: a thaw by a process whose tracer asked for clone and fork events
 * (PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK). The thaw recreates the image's
 * threads with clones of its own; those are not the program's clones and must not begin ptrace
 * stops: gVisor begins a PTRACE_EVENT_CLONE stop inside Task.Clone and relies on the syscall's
 * return to enter it, so a thaw that went on to clone again entered a second internal stop (a
 * sentry panic), and a tracer operating on the half-stopped thawer waited, uninterruptibly, for
 * a stop its tracee was not going to enter (docs/fuzzing.md, finding 4).
 *
 * usage: thaw_traced IMAGE
 *
 * A child with three worker threads freezes itself into IMAGE and exits; a second child, seized by
 * this process with those options, thaws IMAGE; this process continues every stop it sees until
 * the thawed process exits. The thawed process checks that its workers run, joins them and exits
 * with 42. Prints "freeze=0", then "thaw exit=<code> clone_events=<n>". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

#define WORKERS 3

static volatile unsigned long counters[WORKERS];
static volatile int stop;

static void *worker(void *arg)
{
	long i = (long)arg;
	while (!stop) {
		counters[i]++;
		sched_yield();
	}
	return NULL;
}

/* frozen starts the workers and freezes the process into image; it returns only in the thawed
 * process, with its exit status. */
static int frozen(const char *image)
{
	pthread_t th[WORKERS];
	for (long i = 0; i < WORKERS; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i) != 0)
			return 3;
	if (!counters_advance(counters, WORKERS, 60000))
		return 4;
	int fd = open(image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 5;
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	if (r == 0)
		_exit(0); /* Frozen; the image goes on in the thawer. */
	if (r != 1)
		return 6;
	int ok = counters_advance(counters, WORKERS, 60000);
	stop = 1;
	for (int i = 0; i < WORKERS; i++)
		ok = ok && pthread_join(th[i], NULL) == 0;
	return ok ? 42 : 7;
}

/* trace_until_exit continues every stop of t and of anything auto-attached to it until t exits,
 * counting clone and fork events, and returns t's exit code (128+n if killed by signal n). A
 * ptrace call that hangs is the failure (the harness's timeout ends the sandbox).
 *
 * It polls (WNOHANG) rather than blocking in waitpid: gVisor wakes a parent that also traces a
 * process only once, when the leader exits, and a leader is not waitable until its last thread
 * is gone; if a thread outlives the leader's exit by a moment (a joined thread still on its way
 * out when main returns), nothing wakes a blocked waitpid again (docs/upstream-gaps.md). */
static int trace_until_exit(pid_t t, int *clone_events)
{
	int st;
	for (;;) {
		pid_t p = waitpid(-1, &st, __WALL | WNOHANG);
		if (p == 0) {
			usleep(1000);
			continue;
		}
		if (p < 0) {
			if (errno == EINTR)
				continue;
			perror("waitpid");
			return -1;
		}
		if (p == t && (WIFEXITED(st) || WIFSIGNALED(st)))
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (!WIFSTOPPED(st))
			continue;
		int event = st >> 16, sig = 0;
		if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK)
			(*clone_events)++;
		else if (event == 0 && WSTOPSIG(st) != SIGTRAP && WSTOPSIG(st) != SIGSTOP)
			sig = WSTOPSIG(st); /* A signal-delivery stop: deliver it. */
		ptrace(PTRACE_CONT, p, 0, (void *)(long)sig);
	}
}

/* seize_traced forks a child that, once seized with clone and fork events, runs argv. */
static pid_t seize_traced(char *const argv[])
{
	int go[2];
	if (pipe(go) != 0) {
		perror("pipe");
		exit(2);
	}
	pid_t t = fork_dying_with_parent();
	if (t == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(8);
		close(go[0]);
		execv(argv[0], argv);
		_exit(9);
	}
	close(go[0]);
	long opts = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK;
	if (ptrace(PTRACE_SEIZE, t, 0, (void *)opts) != 0) {
		perror("PTRACE_SEIZE");
		exit(2);
	}
	if (write(go[1], "g", 1) != 1) {
		perror("write");
		exit(2);
	}
	close(go[1]);
	return t;
}

/* tree_mode: a subtree (a process and its child, waiting for the file "go") is frozen and killed
 * with `checkpt -c -t PID -k`; a seized `checkpt -r -t DIR` restores it, with clones of the
 * restore's own (tree agents, threads), and exits with the restored root's status, 42. Prints
 * "tree exit=<code>". */
static int tree_mode(char *runsc, char *dir)
{
	unlink("go");
	int ready[2];
	if (pipe(ready) != 0) {
		perror("pipe");
		return 2;
	}
	pid_t s = fork();
	if (s == 0) {
		close(ready[0]);
		pid_t c = fork();
		if (c == 0) {
			while (access("go", F_OK) != 0)
				usleep(1000);
			_exit(0);
		}
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		while (access("go", F_OK) != 0)
			usleep(1000);
		waitpid(c, NULL, 0);
		_exit(42);
	}
	close(ready[1]);
	char r;
	if (read(ready[0], &r, 1) != 1) {
		printf("FAIL the subtree did not start\n");
		return 1;
	}
	char pid[32];
	snprintf(pid, sizeof pid, "%d", s);
	pid_t f = fork();
	if (f == 0) {
		execv(runsc, (char *[]){ runsc, "checkpt", "-c", "-t", pid, "-o", dir, "-k", NULL });
		_exit(9);
	}
	int st;
	if (waitpid(f, &st, 0) != f || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("FAIL checkpt -c ended with status %#x\n", st);
		return 1;
	}
	waitpid(s, NULL, 0); /* Killed by -k. */
	printf("frozen=1\n");
	int fd = open("go", O_WRONLY | O_CREAT, 0644);
	if (fd < 0) {
		perror("go");
		return 2;
	}
	close(fd);
	int events = 0;
	pid_t t = seize_traced((char *[]){ runsc, "checkpt", "-r", "-t", dir, NULL });
	printf("tree exit=%d\n", trace_until_exit(t, &events));
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* Nothing buffered is copied into a fork. */
	if (argc == 4 && strcmp(argv[1], "tree") == 0)
		return tree_mode(argv[2], argv[3]);
	if (argc != 2) {
		fprintf(stderr, "usage: %s IMAGE | tree RUNSC DIR\n", argv[0]);
		return 2;
	}
	pid_t a = fork_dying_with_parent();
	if (a == 0)
		_exit(frozen(argv[1]));
	int st;
	if (waitpid(a, &st, 0) != a || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("FAIL the freezer ended with status %#x\n", st);
		return 1;
	}
	printf("freeze=0\n");
	fflush(stdout);

	int go[2];
	if (pipe(go) != 0) {
		perror("pipe");
		return 2;
	}
	pid_t t = fork_dying_with_parent();
	if (t == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(8);
		int fd = open(argv[1], O_RDONLY);
		long r = sys_checkpoint(CKPT_THAW, fd, -1, 1);
		fprintf(stderr, "thaw failed: ret=%ld errno=%d\n", r, errno);
		_exit(9);
	}
	close(go[0]);
	long opts = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK;
	if (ptrace(PTRACE_SEIZE, t, 0, (void *)opts) != 0) {
		perror("PTRACE_SEIZE");
		return 2;
	}
	if (write(go[1], "g", 1) != 1) {
		perror("write");
		return 2;
	}
	int clone_events = 0;
	int code = trace_until_exit(t, &clone_events);
	printf("thaw exit=%d clone_events=%d\n", code, clone_events);
	return 0;
}
