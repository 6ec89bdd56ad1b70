/* tree_freeze_tracee: a tree freeze parks a traced process; its tracer, outside the tree, must not
 * be held by that (docs/fuzzing.md, finding 4, the PTRACE_DETACH hazard). A tracer keeps seizing,
 * interrupting and detaching this process's child; the child is frozen with CKPT_TREE_KILL into a
 * pipe nobody reads, so the freeze gets stuck and keeps it parked. While it is stuck, the tracer's
 * ptrace calls must all return (its counter goes on): a parked tracee is never between beginning
 * a ptrace stop and entering it, the state in which gVisor's PTRACE_DETACH, PTRACE_CONT and the
 * like wait uninterruptibly for the tracee's goroutine to stop. When the pipe's reader leaves, the
 * freeze fails with EPIPE and the child runs again.
 *
 * Prints "stuck=1", "tracer=1", "stuck_freeze ret=-1 errno=EPIPE", "released=1", "ok", or FAIL
 * lines and exit 1. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "guest.h"

struct shared {
	volatile unsigned long tracee; /* the child's loops */
	volatile unsigned long tracer; /* the tracer's seize/interrupt/detach rounds */
	volatile int stuck_done;
	volatile long stuck_ret;
	volatile int stuck_errno;
};

static struct shared *sh;
static int pipe_w;
static pid_t tracee_pid;

static pid_t start_tracee(void)
{
	pid_t p = fork_dying_with_parent();
	if (p != 0)
		return p;
	fill_bulk(4); /* An image far larger than the pipe's 64 KiB. */
	for (;;) {
		sh->tracee++;
		usleep(100);
	}
}

static pid_t start_tracer(void)
{
	pid_t p = fork_dying_with_parent();
	if (p != 0)
		return p;
	int attached = 0;
	for (;;) {
		if (!attached)
			attached = ptrace(PTRACE_SEIZE, tracee_pid, 0, 0) == 0;
		if (attached) {
			int st;
			ptrace(PTRACE_INTERRUPT, tracee_pid, 0, 0);
			while (waitpid(tracee_pid, &st, __WALL | WNOHANG) > 0)
				;
			/* Succeeds once the tracee is in its interrupt stop; ESRCH while it is not. */
			if (ptrace(PTRACE_DETACH, tracee_pid, 0, 0) == 0)
				attached = 0;
		}
		sh->tracer++;
		sched_yield();
	}
}

static void *stuck_freeze(void *arg)
{
	(void)arg;
	long r;
	/* EBUSY: the tracee was in a ptrace stop, which a tree freeze refuses; try again. */
	while ((r = sys_checkpoint(CKPT_FREEZE_TREE, pipe_w, tracee_pid, CKPT_TREE_KILL)) < 0 && errno == EBUSY)
		usleep(1000);
	sh->stuck_errno = r < 0 ? errno : 0;
	sh->stuck_ret = r;
	sh->stuck_done = 1;
	return NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* Each line out at once: a timeout keeps what was said. */
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	tracee_pid = start_tracee();
	pid_t tracer_pid = start_tracer();
	if (!counters_advance(&sh->tracer, 1, 60000)) {
		printf("FAIL the tracer does not run\n");
		return 1;
	}
	int p[2];
	if (pipe(p) != 0) {
		perror("pipe");
		return 2;
	}
	pipe_w = p[1];
	pthread_t stuck;
	pthread_create(&stuck, NULL, stuck_freeze, NULL);
	/* Stuck once the tracee's counter has stood still for a second (a ptrace stop lasts one round
	 * of the tracer). */
	unsigned long last = sh->tracee;
	for (int i = 0, still = 0; i < 60000 && still < 1000 && !sh->stuck_done; i++) {
		usleep(1000);
		if (sh->tracee == last) {
			still++;
		} else {
			still = 0;
			last = sh->tracee;
		}
	}
	if (sh->stuck_done)
		printf("stuck_freeze ended early: ret=%ld errno=%d\n", sh->stuck_ret, sh->stuck_errno);
	printf("stuck=%d\n", !sh->stuck_done);
	int tracer = counters_advance(&sh->tracer, 1, 60000);
	printf("tracer=%d\n", tracer);
	close(p[0]);
	for (int i = 0; i < 60000 && !sh->stuck_done; i++)
		usleep(1000);
	if (!sh->stuck_done) {
		printf("FAIL the stuck freeze did not end when its reader left\n");
		return 1;
	}
	printf("stuck_freeze ret=%ld errno=%s\n", sh->stuck_ret, sh->stuck_errno == EPIPE ? "EPIPE" : strerror(sh->stuck_errno));
	pthread_join(stuck, NULL);
	int released = counters_advance(&sh->tracee, 1, 60000);
	printf("released=%d\n", released);
	kill(tracer_pid, SIGKILL);
	kill(tracee_pid, SIGKILL);
	if (!tracer || !released)
		return 1;
	printf("ok\n");
	return 0;
}
