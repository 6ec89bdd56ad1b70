/* obj_siginfo: exact siginfo of pending signals, and the documented behaviour of madvise flags and
 * rseq (issue 8 item 7; docs/notes-thaw.md "Pending signals" and "Not restored").
 *
 * usage: obj_siginfo IMAGE
 *
 * Blocks SIGUSR1 and SIGRTMIN+2, queues SIGUSR1 with kill (SI_USER) and SIGRTMIN+2 twice with
 * sigqueue (values 7 and 8); maps two pages and marks the first MADV_DONTFORK (a child forked now
 * faults on it); freezes. Right after the freeze (r=0) it checks the signals are still pending
 * ("requeued=1": the freeze takes and queues them again), then kills itself. After a thaw it
 * prints "siginfo usr1=1 rt1=1 rt2=1 none=1 dontfork=1 wipeonfork=1 rseq=1": the three signals
 * with their exact siginfo (sender pid = the frozen process's pid, SI_QUEUE values), nothing
 * else pending; MADV_DONTFORK not restored (a child forked after the thaw reads the page: the
 * documented loss); MADV_WIPEONFORK refused by gVisor (EINVAL); rseq(2) ENOSYS (no rseq on systrap
 * and ptrace). Exit 0 if all are 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../include/ckpt.h"

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

static pid_t frozen_pid;
static char *mem;

/* child_reads reports whether a child forked now can read mem[0] (it faults if the page was not
 * copied into it). */
static int child_reads(void)
{
	pid_t c = fork();
	if (c == 0)
		_exit(mem[0] == 'x' ? 0 : 1);
	int st;
	return waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int take(int sig, int code, int value)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	struct timespec zero = {0, 0};
	siginfo_t si;
	if (sigtimedwait(&set, &si, &zero) != sig) {
		printf("sig %d: none\n", sig);
		return 0;
	}
	int ok = si.si_code == code && si.si_pid == frozen_pid && (code != SI_QUEUE || si.si_value.sival_int == value);
	if (!ok)
		printf("sig %d: code %d pid %d (want %d) value %d\n", sig, si.si_code, si.si_pid, frozen_pid, si.si_value.sival_int);
	return ok;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	int rt = SIGRTMIN + 2;
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, rt);
	sigprocmask(SIG_BLOCK, &block, NULL);
	frozen_pid = getpid();
	kill(frozen_pid, SIGUSR1);
	union sigval v = {.sival_int = 7};
	sigqueue(frozen_pid, rt, v);
	v.sival_int = 8;
	sigqueue(frozen_pid, rt, v);

	mem = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || madvise(mem, 4096, MADV_DONTFORK) != 0) {
		perror("madvise");
		return 2;
	}
	mem[0] = 'x';
	if (child_reads()) {
		fprintf(stderr, "MADV_DONTFORK had no effect before the freeze\n");
		return 2;
	}

	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	printf("r=%ld errno=%d\n", r, r < 0 ? errno : 0);
	if (r == 0) {
		sigset_t p;
		sigpending(&p);
		printf("requeued=%d\n", sigismember(&p, SIGUSR1) && sigismember(&p, rt));
		fflush(stdout);
		kill(getpid(), SIGKILL);
	}
	int usr1 = take(SIGUSR1, SI_USER, 0);
	int rt1 = take(rt, SI_QUEUE, 7);
	int rt2 = take(rt, SI_QUEUE, 8);
	sigset_t p;
	sigpending(&p);
	int none = sigisemptyset(&p);
	int dontfork = child_reads();
	int wipeonfork = madvise(mem + 4096, 4096, MADV_WIPEONFORK) < 0 && errno == EINVAL;
	int rseq = syscall(SYS_rseq, NULL, 0, 0, 0) < 0 && errno == ENOSYS;
	printf("siginfo usr1=%d rt1=%d rt2=%d none=%d dontfork=%d wipeonfork=%d rseq=%d\n", usr1, rt1, rt2, none, dontfork,
	       wipeonfork, rseq);
	return usr1 && rt1 && rt2 && none && dontfork && wipeonfork && rseq ? 0 : 1;
}
