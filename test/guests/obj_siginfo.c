/* obj_siginfo: exact siginfo of pending signals, and the documented behaviour of madvise flags and
 * rseq (issue 8 item 7; docs/notes-thaw.md "Pending signals" and "Not restored").
 *
 * usage: obj_siginfo IMAGE
 *
 * Blocks SIGUSR1 and SIGRTMIN+2, queues SIGUSR1 with kill (SI_USER) and SIGRTMIN+2 twice with
 * sigqueue (values 7 and 8); maps two pages and marks the first MADV_DONTFORK (a child forked now
 * faults on it); freezes. Right after the freeze (r=0) it checks the signals are still pending
 * ("requeued=1": the freeze only reads them), then kills itself. After a thaw it
 * prints "siginfo usr1=1 rt1=1 rt2=1 none=1 dontfork=1 wipeonfork=1 rseq=1": the three signals
 * with their exact siginfo (sender pid = the frozen process's pid, SI_QUEUE values), nothing
 * else pending; MADV_DONTFORK restored (a child forked after the thaw faults on the first page and
 * reads the second); MADV_WIPEONFORK refused by gVisor (EINVAL); rseq(2) ENOSYS (no rseq on
 * systrap and ptrace). Exit 0 if all are 1.
 *
 * Timers and other threads' queues: timer 1 (SIGEV_SIGNAL, SIGRTMIN+3, value 42) is set in the past
 * with a 1000 s interval so that its signal is pending with 5 overruns; timer 2 (SIGRTMIN+6, value
 * 66) likewise, then set again (its pending signal is orphaned: overruns no longer count); a second
 * thread blocks every signal and gets SIGUSR2 by tgkill, SIGRTMIN+4 twice by pthread_sigqueue
 * (values 9, 10) and the signal of timer 3 (SIGEV_THREAD_ID to it, SIGRTMIN+5, value 55, 3
 * overruns). After a thaw it prints "queues timer=1 orphan=1 tkill=1 tq1=1 tq2=1 ttimer=1": each
 * siginfo exact (SI_TIMER with the timer id, value and overrun; timer_getoverrun equal to the
 * overrun once dequeued, which only a signal still linked to its timer gives; setting timer 2 in
 * the past again queues no second signal, as its pending one is still linked; the thread's
 * signals on its own queue with SI_TKILL / SI_QUEUE, the frozen pid and their values). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
static volatile int thread_ready, thread_go;
static volatile pid_t thread_tid;
static timer_t timer3;
static int tkill_ok, tq1_ok, tq2_ok, ttimer_ok;

/* child_reads reports whether a child forked now can read mem[off] (it faults if the page was not
 * copied into it). */
static int child_reads(int off)
{
	pid_t c = fork();
	if (c == 0)
		_exit(mem[off] == 'x' ? 0 : 1);
	int st;
	return waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* dequeue is rt_sigtimedwait itself: glibc's sigtimedwait reports SI_TKILL as SI_USER. */
static int dequeue(const sigset_t *set, siginfo_t *si, const struct timespec *timeout)
{
	return syscall(SYS_rt_sigtimedwait, set, si, timeout, 8);
}

/* dequeue_now dequeues sig into si without waiting; if none is pending it says so and returns 0. */
static int dequeue_now(int sig, siginfo_t *si)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	struct timespec zero = {0, 0};
	if (dequeue(&set, si, &zero) != sig) {
		printf("sig %d: none\n", sig);
		return 0;
	}
	return 1;
}

static int take(int sig, int code, int value)
{
	siginfo_t si;
	if (!dequeue_now(sig, &si))
		return 0;
	int ok = si.si_code == code && si.si_pid == frozen_pid && (code != SI_QUEUE || si.si_value.sival_int == value);
	if (!ok)
		printf("sig %d: code %d pid %d (want %d) value %d\n", sig, si.si_code, si.si_pid, frozen_pid, si.si_value.sival_int);
	return ok;
}

/* take_timer dequeues sig and checks it is timer tm's with value and overrun, and that
 * timer_getoverrun then says overrun. */
static int take_timer(int sig, timer_t tm, int value, int overrun)
{
	siginfo_t si;
	if (!dequeue_now(sig, &si))
		return 0;
	int got = timer_getoverrun(tm);
	int ok = si.si_code == SI_TIMER && si.si_timerid == (int)(long)tm && si.si_value.sival_int == value &&
		 si.si_overrun == overrun && got == overrun;
	if (!ok)
		printf("sig %d: code %d timerid %d (want %d) value %d overrun %d getoverrun %d (want %d)\n", sig, si.si_code,
		       si.si_timerid, (int)(long)tm, si.si_value.sival_int, si.si_overrun, got, overrun);
	return ok;
}

/* take_from checks a signal dequeued by this thread: code, the frozen pid, a value. */
static int take_from(int sig, int code, int value)
{
	return take(sig, code, value);
}

/* past arms tm in the past by secs (plus half a second) with a 1000 s interval: it expires
 * secs/1000 + 1 times at once, one signal with secs/1000 overruns. */
static void past(timer_t tm, int secs)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct itimerspec its = {.it_interval = {1000, 0}, .it_value = {now.tv_sec - secs, now.tv_nsec}};
	if (its.it_value.tv_nsec >= 500000000)
		its.it_value.tv_nsec -= 500000000;
	else
		its.it_value.tv_sec--, its.it_value.tv_nsec += 500000000;
	if (timer_settime(tm, TIMER_ABSTIME, &its, NULL) != 0) {
		perror("timer_settime");
		exit(2);
	}
}

static timer_t new_timer(int notify, int sig, int value, pid_t tid)
{
	struct sigevent sev = {.sigev_notify = notify, .sigev_signo = sig, .sigev_value.sival_int = value};
	if (notify == SIGEV_THREAD_ID)
		sev._sigev_un._tid = tid;
	timer_t tm;
	if (timer_create(CLOCK_REALTIME, &sev, &tm) != 0) {
		perror("timer_create");
		exit(2);
	}
	return tm;
}

/* second blocks every signal, waits to be told to go (after the thaw) and checks its own queue. */
static void *second(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	thread_tid = gettid();
	__atomic_store_n(&thread_ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&thread_go, __ATOMIC_SEQ_CST)) {
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	tkill_ok = take_from(SIGUSR2, SI_TKILL, 0);
	tq1_ok = take_from(SIGRTMIN + 4, SI_QUEUE, 9);
	tq2_ok = take_from(SIGRTMIN + 4, SI_QUEUE, 10);
	ttimer_ok = take_timer(SIGRTMIN + 5, timer3, 55, 3);
	return NULL;
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
	sigaddset(&block, SIGUSR2);
	for (int i = 3; i <= 6; i++)
		sigaddset(&block, SIGRTMIN + i);
	sigprocmask(SIG_BLOCK, &block, NULL);
	frozen_pid = getpid();
	union sigval v;
	pthread_t th;
	if (pthread_create(&th, NULL, second, NULL) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		return 2;
	}
	while (!__atomic_load_n(&thread_ready, __ATOMIC_SEQ_CST))
		sched_yield();
	timer_t timer1 = new_timer(SIGEV_SIGNAL, SIGRTMIN + 3, 42, 0);
	timer_t timer2 = new_timer(SIGEV_SIGNAL, SIGRTMIN + 6, 66, 0);
	timer3 = new_timer(SIGEV_THREAD_ID, SIGRTMIN + 5, 55, thread_tid);
	past(timer1, 5000);
	past(timer2, 2000);
	struct itimerspec later = {.it_value = {1000, 0}};
	timer_settime(timer2, 0, &later, NULL); /* Orphans its pending signal. */
	past(timer3, 3000);
	syscall(SYS_tgkill, frozen_pid, thread_tid, SIGUSR2);
	v.sival_int = 9;
	pthread_sigqueue(th, SIGRTMIN + 4, v);
	v.sival_int = 10;
	pthread_sigqueue(th, SIGRTMIN + 4, v);
	kill(frozen_pid, SIGUSR1);
	v.sival_int = 7;
	sigqueue(frozen_pid, rt, v);
	v.sival_int = 8;
	sigqueue(frozen_pid, rt, v);

	mem = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || madvise(mem, 4096, MADV_DONTFORK) != 0) {
		perror("madvise");
		return 2;
	}
	mem[0] = 'x';
	mem[4096] = 'x';
	if (child_reads(0) || !child_reads(4096)) {
		fprintf(stderr, "MADV_DONTFORK had no effect, or too much, before the freeze\n");
		return 2;
	}

	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	printf("r=%ld errno=%d\n", r, r < 0 ? errno : 0);
	if (r == 0) {
		sigset_t p;
		sigpending(&p);
		printf("requeued=%d\n", sigismember(&p, SIGUSR1) && sigismember(&p, rt) && sigismember(&p, SIGRTMIN + 3));
		fflush(stdout);
		kill(getpid(), SIGKILL);
	}
	int timer = take_timer(SIGRTMIN + 3, timer1, 42, 5);
	past(timer2, 2000); /* Still linked: no second signal, only overruns (which orphaning drops). */
	int orphan = take_timer(SIGRTMIN + 6, timer2, 66, 0);
	sigset_t t2;
	sigemptyset(&t2);
	sigaddset(&t2, SIGRTMIN + 6);
	struct timespec zero = {0, 0};
	if (dequeue(&t2, NULL, &zero) == SIGRTMIN + 6) {
		printf("timer 2 queued a second signal\n");
		orphan = 0;
	}
	__atomic_store_n(&thread_go, 1, __ATOMIC_SEQ_CST);
	pthread_join(th, NULL);
	printf("queues timer=%d orphan=%d tkill=%d tq1=%d tq2=%d ttimer=%d\n", timer, orphan, tkill_ok, tq1_ok, tq2_ok,
	       ttimer_ok);
	int queues = timer && orphan && tkill_ok && tq1_ok && tq2_ok && ttimer_ok;
	int usr1 = take(SIGUSR1, SI_USER, 0);
	int rt1 = take(rt, SI_QUEUE, 7);
	int rt2 = take(rt, SI_QUEUE, 8);
	sigset_t p;
	sigpending(&p);
	int none = sigisemptyset(&p);
	int dontfork = !child_reads(0) && child_reads(4096);
	int wipeonfork = madvise(mem + 4096, 4096, MADV_WIPEONFORK) < 0 && errno == EINVAL;
	int rseq = syscall(SYS_rseq, NULL, 0, 0, 0) < 0 && errno == ENOSYS;
	printf("siginfo usr1=%d rt1=%d rt2=%d none=%d dontfork=%d wipeonfork=%d rseq=%d\n", usr1, rt1, rt2, none, dontfork,
	       wipeonfork, rseq);
	return queues && usr1 && rt1 && rt2 && none && dontfork && wipeonfork && rseq ? 0 : 1;
}
