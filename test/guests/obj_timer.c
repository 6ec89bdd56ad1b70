/* obj_timer: POSIX timers through a freeze and a thaw (issue 8 item 5).
 *
 * usage: obj_timer IMAGE          freeze, then check after a thaw
 *        obj_timer -thaw IMAGE    create two timers, then thaw IMAGE: its timer ids 0 and 1 cannot
 *                                 be had; prints "thaw r=.. errno=.. alive=1"
 *
 * Timers (raw syscalls, so the ids are the kernel's): 0 CLOCK_MONOTONIC SIGEV_SIGNAL SIGUSR1 value
 * 0x1111, armed 3 s (1 s of it spent before the freeze) interval 0.5 s; 1 CLOCK_REALTIME SIGEV_NONE
 * 1000 s interval 7 s; 2 deleted (a gap); 3 CLOCK_MONOTONIC SIGEV_THREAD_ID to a second thread,
 * SIGRTMIN+1 value 0x3333, 1.5 s one-shot; 4 CLOCK_PROCESS_CPUTIME_ID disarmed; 5
 * CLOCK_THREAD_CPUTIME_ID 100 s.
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself with SIGKILL.
 * After a thaw it checks every timer and prints "ids=.. t0=.. t0_again=.. t1=.. t3=.. t4=.. t5=..
 * next=.." (1 = as expected); exit 0 if all are. Timing checks are lower bounds only (a timer never
 * fires early, and its remaining time is no more than at the freeze), never upper bounds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define MS 1000000LL
#define SIG_THREAD (SIGRTMIN + 1)

static int64_t ns(struct timespec ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; }
static struct timespec ts_of(int64_t n) { return (struct timespec){n / 1000000000LL, n % 1000000000LL}; }
static int64_t now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ns(ts);
}

static int create(clockid_t clock, int notify, int signo, long value, pid_t tid)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = notify;
	sev.sigev_signo = signo;
	sev.sigev_value.sival_ptr = (void *)value;
	sev._sigev_un._tid = tid;
	int id = -1;
	if (syscall(SYS_timer_create, clock, &sev, &id) != 0) {
		perror("timer_create");
		_exit(2);
	}
	return id;
}

static void arm(int id, int64_t value, int64_t interval)
{
	struct itimerspec its = {.it_value = ts_of(value), .it_interval = ts_of(interval)};
	if (syscall(SYS_timer_settime, id, 0, &its, NULL) != 0) {
		perror("timer_settime");
		_exit(2);
	}
}

static int gettime(int id, int64_t *value, int64_t *interval)
{
	struct itimerspec its;
	if (syscall(SYS_timer_gettime, id, &its) != 0)
		return -1;
	*value = ns(its.it_value);
	*interval = ns(its.it_interval);
	return 0;
}

static volatile pid_t worker_tid;
static siginfo_t worker_si;
static int worker_got, worker_errno;

static void *worker(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIG_THREAD);
	worker_tid = gettid();
	struct timespec limit = {60, 0};
	/* The freeze may interrupt the wait (EINTR, as a stop and continue may): wait again. */
	do
		worker_got = sigtimedwait(&s, &worker_si, &limit);
	while (worker_got < 0 && errno == EINTR);
	worker_errno = errno;
	return NULL;
}

/* waitsig waits (at most 30 s) for sig and returns its siginfo's timer id and value. */
static int waitsig(int sig, siginfo_t *si)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	struct timespec limit = {30, 0};
	return sigtimedwait(&s, si, &limit) == sig;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	if (argc == 3 && strcmp(argv[1], "-thaw") == 0) {
		create(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
		int id = create(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
		int fd = open(argv[2], O_RDONLY);
		long r = sys_checkpoint(CKPT_THAW, fd, -1, 1);
		int64_t v, iv;
		printf("thaw r=%ld errno=%d alive=%d\n", r, r < 0 ? errno : 0, id == 1 && gettime(id, &v, &iv) == 0);
		return 0;
	}
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIG_THREAD);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	pthread_t th;
	pthread_create(&th, NULL, worker, NULL);
	while (!worker_tid)
		usleep(1000);

	int t0 = create(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 0x1111, 0);
	int t1 = create(CLOCK_REALTIME, SIGEV_NONE, 0, 0, 0);
	int t2 = create(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
	int t3 = create(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIG_THREAD, 0x3333, worker_tid);
	int t4 = create(CLOCK_PROCESS_CPUTIME_ID, SIGEV_NONE, 0, 0, 0);
	int t5 = create(CLOCK_THREAD_CPUTIME_ID, SIGEV_NONE, 0, 0, 0);
	syscall(SYS_timer_delete, t2);
	arm(t0, 3000 * MS, 500 * MS);
	arm(t1, 1000000 * MS, 7000 * MS);
	arm(t5, 100000 * MS, 0);
	usleep(1000 * 1000);
	arm(t3, 1500 * MS, 0);
	int64_t r0, i0;
	gettime(t0, &r0, &i0);
	printf("ids=%d,%d,%d,%d,%d,%d r0=%lld\n", t0, t1, t2, t3, t4, t5, (long long)r0);
	freeze_and_die(argv[1]);

	int64_t thawed = now(), v, iv;
	int ids = t0 == 0 && t1 == 1 && t2 == 2 && t3 == 3 && t4 == 4 && t5 == 5 && gettime(2, &v, &iv) < 0 &&
		  errno == EINVAL;

	/* Timer 0: armed with what remained at the freeze (not its first 3 s), fires no earlier, with
	 * its signal, value and id; then again after its interval. */
	int64_t rem = -1;
	int tm0 = gettime(t0, &rem, &iv) == 0 && rem > 0 && rem <= r0 && iv == 500 * MS;
	siginfo_t si;
	tm0 = tm0 && waitsig(SIGUSR1, &si) && si.si_code == SI_TIMER && si.si_value.sival_ptr == (void *)0x1111 &&
	      si.si_timerid == 0 && now() - thawed >= rem - 2 * MS;
	/* Its first expiry was at least rem after the thaw, the next one an interval later. */
	int tm0again = waitsig(SIGUSR1, &si) && si.si_code == SI_TIMER && now() - thawed >= rem + 500 * MS - 2 * MS;

	int tm1 = gettime(t1, &v, &iv) == 0 && v > 0 && v <= 1000000 * MS && iv == 7000 * MS;

	/* Timer 3 goes to the second thread (whatever its tid is now). */
	pthread_join(th, NULL);
	int tm3 = worker_got == SIG_THREAD && worker_si.si_code == SI_TIMER &&
		  worker_si.si_value.sival_ptr == (void *)0x3333 && worker_si.si_timerid == 3;

	int tm4 = gettime(t4, &v, &iv) == 0 && v == 0 && iv == 0;
	int tm5 = gettime(t5, &v, &iv) == 0 && v > 0 && v <= 100000 * MS;

	/* A new timer gets the id after the highest one, as it would have without the freeze. */
	int next = create(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0) == 6;

	printf("worker: sig=%d errno=%d code=%d value=%p timerid=%d\n", worker_got, worker_errno, worker_si.si_code,
	       worker_si.si_value.sival_ptr, worker_si.si_timerid);
	printf("rem=%lld ids=%d t0=%d t0_again=%d t1=%d t3=%d t4=%d t5=%d next=%d\n", (long long)rem, ids, tm0,
	       tm0again, tm1, tm3, tm4, tm5, next);
	return ids && tm0 && tm0again && tm1 && tm3 && tm4 && tm5 && next ? 0 : 1;
}
