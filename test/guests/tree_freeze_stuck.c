/* tree_freeze_stuck: a tree freeze with CKPT_TREE_KILL stuck writing into a pipe nobody reads
 * (its tree, a process that forks and vforks in a loop, stays parked) must not hold up the rest
 * of the sandbox (docs/fuzzing.md, finding 4: a lock-up on ptrace). While it is stuck: a ptracer
 * keeps seizing, interrupting and detaching its child, a thread keeps tree-freezing that pair
 * into /dev/null (each call returns, done or EBUSY), and this process can still fork. When the
 * pipe's reader leaves, the stuck freeze fails with EPIPE. Prints "stuck=1", "progress=1",
 * "fork=1", "stuck_freeze ret=-1 errno=EPIPE", "ok", or FAIL lines and exit 1. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "guest.h"

struct shared {
	volatile unsigned long counters[3]; /* forks of the forker, traces, other freezes */
	volatile int stop;
	volatile int stuck_done;
	volatile long stuck_ret;
	volatile int stuck_errno;
};

static struct shared *sh;
static int pipe_w;
static pid_t forker_pid, tracer_pid;

static pid_t start_forker(void)
{
	pid_t p = fork_dying_with_parent();
	if (p != 0)
		return p;
	for (;;) {
		pid_t c = fork();
		if (c == 0)
			_exit(0);
		if (c > 0)
			waitpid(c, NULL, 0);
		c = vfork();
		if (c == 0)
			_exit(0);
		if (c > 0)
			waitpid(c, NULL, 0);
		sh->counters[0]++;
	}
}

static pid_t start_tracer(void)
{
	pid_t p = fork_dying_with_parent();
	if (p != 0)
		return p;
	pid_t c = fork_dying_with_parent();
	if (c == 0)
		for (;;)
			usleep(100);
	for (;;) {
		if (ptrace(PTRACE_SEIZE, c, 0, 0) == 0) {
			ptrace(PTRACE_INTERRUPT, c, 0, 0);
			waitpid(c, NULL, __WALL);
			ptrace(PTRACE_DETACH, c, 0, 0);
			sh->counters[1]++;
		}
		sched_yield();
	}
}

static void *stuck_freeze(void *arg)
{
	(void)arg;
	long r = sys_checkpoint(CKPT_FREEZE_TREE, pipe_w, forker_pid, CKPT_TREE_KILL);
	sh->stuck_errno = r < 0 ? errno : 0;
	sh->stuck_ret = r;
	sh->stuck_done = 1;
	return NULL;
}

static void *other_freezes(void *arg)
{
	(void)arg;
	int null = open("/dev/null", O_WRONLY);
	while (!sh->stop) {
		long r = sys_checkpoint(CKPT_FREEZE_TREE, null, tracer_pid, 0);
		if (r == 0 || errno == EBUSY)
			sh->counters[2]++;
	}
	return NULL;
}

int main(void)
{
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	forker_pid = start_forker();
	tracer_pid = start_tracer();
	int p[2];
	if (pipe(p) != 0) {
		perror("pipe");
		return 2;
	}
	pipe_w = p[1];
	int fail = 0;
	pthread_t stuck, others;
	pthread_create(&stuck, NULL, stuck_freeze, NULL);
	/* The forker's image is megabytes, the pipe holds 64 KiB: the freeze gets stuck once it has
	 * parked the forker, whose counter then stops. */
	unsigned long last = sh->counters[0];
	for (int i = 0, still = 0; i < 60000 && still < 1000 && !sh->stuck_done; i++) {
		usleep(1000);
		if (sh->counters[0] == last) {
			still++;
		} else {
			still = 0;
			last = sh->counters[0];
		}
	}
	if (sh->stuck_done)
		printf("stuck_freeze ended early: ret=%ld errno=%d\n", sh->stuck_ret, sh->stuck_errno);
	printf("stuck=%d\n", !sh->stuck_done);
	pthread_create(&others, NULL, other_freezes, NULL);
	int progress = counters_advance(&sh->counters[1], 2, 60000);
	printf("progress=%d\n", progress);
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	int st, forked = c > 0;
	for (int i = 0; forked && i < 60000 && waitpid(c, &st, WNOHANG) == 0; i++)
		usleep(1000);
	printf("fork=%d\n", forked);
	sh->stop = 1;
	close(p[0]);
	for (int i = 0; i < 60000 && !sh->stuck_done; i++)
		usleep(1000);
	if (!sh->stuck_done) {
		printf("FAIL the stuck freeze did not end when its reader left\n");
		return 1;
	}
	printf("stuck_freeze ret=%ld errno=%s\n", sh->stuck_ret, sh->stuck_errno == EPIPE ? "EPIPE" : strerror(sh->stuck_errno));
	pthread_join(others, NULL);
	if (!progress || !forked)
		fail = 1;
	kill(forker_pid, SIGKILL);
	kill(tracer_pid, SIGKILL);
	if (fail)
		return 1;
	printf("ok\n");
	return 0;
}
