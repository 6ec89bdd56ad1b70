/*
 * ckpt_fuzz: a guest-side fuzzer of sys_checkpoint (test/fuzz_guest_test.go, docs/fuzzing.md).
 *
 * usage: ckpt_fuzz SEED CALLS MUTANTS RUNSC_CKPT
 *        (ckpt_fuzz exec-racer: the execve racer re-executes itself in this mode)
 *
 * The main process (the sandbox's first process) starts a bystander that is never named by any
 * call, then runs rounds until CALLS random calls were made. A round leader process sets up a
 * table of fds of every kind, children to freeze (victims: only ever frozen, never signalled to
 * death; fodder: racing execve, exit, fork, vfork, clone and ptrace, two processes freezing each
 * other), and threads that make random sys_checkpoint(type, fd, pid, retval) calls, send SIGCKPT
 * storms, change signal dispositions and thaw ckpt-files by name. After each round the victims
 * must still run (their counters advance, their memory checksum holds) and every other process
 * of the round is killed (it must die).
 * Then MUTANTS mutations of two real images (bit flips, truncations, spliced headers, ...) are
 * thawed by a process that dropped to uid/gid 65534 (nobody), from a file or a pipe; the
 * unmutated images must thaw, and no thawed program may run with uid 0.
 * At the end a fresh process is frozen with `RUNSC_CKPT checkpt -c` and thawed with
 * `checkpt -r`, and the bystander must still count with its memory intact.
 *
 * Output (parsed by the test):
 *   seed=N
 *   result type=T ret=R errno=NAME count=C     every outcome of a fuzzed call (R: 0, 1, n, -1)
 *   mutant kind=K outcome=O count=C            outcomes of the mutated thaws
 *   FAIL <what>                                a broken promise (the test fails on any)
 *   final-thaw-ok, bystander-ok count=N, fuzz-done
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define NOBODY 65534

/* ---- the record shared by every process of the run: a MAP_SHARED mapping of the file .shared
 * in the work directory, made before any fork. A thaw reopens a shared file mapping by path, so a
 * thawed copy of a process records into the same memory. ---- */

/* Types the fuzzer calls; any other random int is counted as "other". */
static const int known_types[] = { 1, 2, 3, 4, 6, 7, 0, 5, 8, 9, -1, 1000, INT_MIN, INT_MAX };
#define NTYPES ((int)(sizeof known_types / sizeof known_types[0]))
#define TYPE_OTHER NTYPES
#define NERR 160
/* Result slots: 0 ret 0, 1 ret 1, 2 ret > 1, 3 other negative ret, 4+e errno e. */
#define NSLOT (4 + NERR)
#define NVICTIM 2
#define VTHREADS 2
#define NFODDER 12
#define NKIND 8
#define NOUTCOME 9

struct shared {
	_Atomic unsigned long calls;
	_Atomic unsigned long counts[NTYPES + 1][NSLOT];
	_Atomic unsigned long thaws;     /* thaws started (a thaw may explain an odd result) */
	_Atomic unsigned long waived;
	volatile unsigned long bystander_count;
	volatile int bystander_bad;
	volatile unsigned long victim_count[NVICTIM * VTHREADS];
	volatile int victim_bad[NVICTIM];
	volatile pid_t victims[NVICTIM];
	volatile pid_t fodder[NFODDER];
	volatile pid_t recent; /* a child that exited (or is exiting) */
	_Atomic unsigned long mutants[NKIND][NOUTCOME];
};

static struct shared *sh;
static pid_t main_pid, bystander_pid;
static char workdir[1024];
static const char *self_exe;

/* ---- PRNG: xorshift64*, one state per thread ---- */
static __thread uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}
static unsigned rndn(unsigned n) { return n ? (unsigned)(rnd() % n) : 0; }
static void seed_rng(uint64_t seed, uint64_t a, uint64_t b)
{
	rng = seed * 0x9E3779B97F4A7C15ULL ^ (a + 1) * 0xBF58476D1CE4E5B9ULL ^ (b + 1) * 0x94D049BB133111EBULL;
	if (!rng)
		rng = 1;
	for (int i = 0; i < 4; i++)
		rnd();
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void record(int type, long r, int err)
{
	int b = TYPE_OTHER;
	for (int i = 0; i < NTYPES; i++)
		if (known_types[i] == type)
			b = i;
	int slot;
	if (r == 0)
		slot = 0;
	else if (r == 1)
		slot = 1;
	else if (r > 1)
		slot = 2;
	else if (r == -1 && err > 0 && err < NERR)
		slot = 4 + err;
	else
		slot = 3;
	atomic_fetch_add(&sh->counts[b][slot], 1);
}

/* ---- the bystander: never named by any call; counts on the clock and checks its memory ---- */
#define BYSTANDER_MEM (1 << 20)
static unsigned long checksum(const unsigned char *p, size_t n)
{
	unsigned long s = 0;
	for (size_t i = 0; i < n; i++)
		s = s * 31 + p[i];
	return s;
}

static void bystander(void)
{
	prctl(PR_SET_NAME, "fz-bystander");
	unsigned char *mem = malloc(BYSTANDER_MEM);
	for (size_t i = 0; i < BYSTANDER_MEM; i++)
		mem[i] = (unsigned char)(i * 7 + 3);
	unsigned long want = checksum(mem, BYSTANDER_MEM);
	for (unsigned long n = 0;; n++) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		sh->bystander_count++;
		if (n % 64 == 0 && checksum(mem, BYSTANDER_MEM) != want)
			sh->bystander_bad = 1;
		usleep(500);
	}
}

/* ---- victims: frozen (and sent SIGCKPT) only; must run on ---- */
#define VICTIM_MEM (256 << 10)
struct victim_arg {
	int idx;
	pid_t pid;
	int final; /* the final checkpt freeze+thaw's process */
};
static struct victim_arg varg;
static unsigned char *vmem;
static unsigned long vsum;

static void *victim_thread(void *p)
{
	int slot = (int)(intptr_t)p;
	for (unsigned long n = 0;; n++) {
		if (getpid() != varg.pid) {
			/* A thawed copy (another pid): the original runs on elsewhere. */
			static atomic_int once;
			if (varg.final && atomic_fetch_add(&once, 1) == 0) {
				printf("final-thaw-ok\n");
				fflush(stdout);
				syscall(SYS_exit_group, 0);
			}
			if (varg.final)
				for (;;)
					pause(); /* the first thread prints and ends the process */
			syscall(SYS_exit_group, 0);
		}
		if (!varg.final) {
			sh->victim_count[varg.idx * VTHREADS + slot]++;
			if (slot == 0 && n % 32 == 0 && checksum(vmem, VICTIM_MEM) != vsum)
				sh->victim_bad[varg.idx] = 1;
		}
		usleep(200);
	}
	return NULL;
}

static void victim(int idx, int final)
{
	prctl(PR_SET_NAME, final ? "fz-final" : "fz-victim");
	varg.idx = idx;
	varg.pid = getpid();
	varg.final = final;
	vmem = malloc(VICTIM_MEM);
	for (size_t i = 0; i < VICTIM_MEM; i++)
		vmem[i] = (unsigned char)(i * 13 + idx);
	vsum = checksum(vmem, VICTIM_MEM);
	pthread_t th;
	for (int i = 1; i < VTHREADS; i++)
		pthread_create(&th, NULL, victim_thread, (void *)(intptr_t)i);
	victim_thread((void *)0);
}

/* ---- fodder: processes racing execve, exit, fork, vfork, clone and ptrace, and two that freeze
 * each other. Anything may happen to them. ---- */
static void exec_racer(char **argv)
{
	/* Each image runs a little, then replaces itself again. */
	for (volatile int i = 0; i < 20000; i++)
		;
	execv("/proc/self/exe", argv);
	_exit(1);
}

static void *fork_loop(void *p)
{
	(void)p;
	for (;;) {
		pid_t c = fork();
		if (c == 0)
			_exit(0);
		if (c > 0) {
			sh->recent = c;
			waitpid(c, NULL, 0);
		}
	}
	return NULL;
}

static void *vfork_loop(void *p)
{
	(void)p;
	for (;;) {
		pid_t c = vfork();
		if (c == 0)
			_exit(0);
		if (c > 0)
			waitpid(c, NULL, 0);
	}
	return NULL;
}

static void *nothing(void *p) { return p; }

static void forker(void)
{
	prctl(PR_SET_NAME, "fz-forker");
	pthread_t a, b;
	pthread_create(&a, NULL, fork_loop, NULL);
	pthread_create(&b, NULL, vfork_loop, NULL);
	for (;;) {
		pthread_t c;
		if (pthread_create(&c, NULL, nothing, NULL) == 0)
			pthread_join(c, NULL);
	}
}

static void ptracer(int slot)
{
	prctl(PR_SET_NAME, "fz-ptracer");
	pid_t c = fork();
	if (c == 0) {
		prctl(PR_SET_NAME, "fz-tracee");
		for (;;)
			usleep(100);
	}
	sh->fodder[slot] = c;
	for (;;) {
		if (ptrace(PTRACE_SEIZE, c, 0, 0) == 0) {
			ptrace(PTRACE_INTERRUPT, c, 0, 0);
			waitpid(c, NULL, __WALL);
			ptrace(PTRACE_DETACH, c, 0, 0);
		}
		sched_yield();
	}
}

static void mutual(int me, int other, int fd)
{
	prctl(PR_SET_NAME, "fz-mutual");
	pid_t mine = getpid();
	seed_rng(rng, 77, me);
	for (;;) {
		pid_t p = sh->fodder[other];
		if (p <= 0) {
			sched_yield();
			continue;
		}
		int type = (int[]){ 1, 1, 6, 7, 3 }[rndn(5)];
		if (type != 6 && ftruncate(fd, 0) == 0)
			lseek(fd, 0, SEEK_SET); /* the images would fill the disk; async writes still run */
		int retval = type == 7 ? (int)rndn(2) : 0;
		long r = sys_checkpoint(type, type == 7 ? -1 : fd, type == 7 ? -1 : p, retval);
		int e = errno;
		if (getpid() != mine)
			syscall(SYS_exit_group, 0); /* a thawed copy in another process */
		record(type, r, e);
		atomic_fetch_add(&sh->calls, 1);
	}
}

/* ---- the round leader: an fd table of every kind, victims, fodder, worker threads ---- */
enum { NPOOL = 40 };
static int pool[NPOOL];
static int npool;
static int sinkfd; /* /dev/null, write-only: where freezes of the main process go */
static int drain_fds[4];
static int ndrain;
static pid_t round_pid;
static volatile int round_stop;
static volatile pid_t worker_tids[16];
static unsigned long round_calls_each;
static pthread_t workers[16];
static int nworkers;

static void add(int fd)
{
	if (fd >= 0 && npool < NPOOL)
		pool[npool++] = fd;
}

static void noop(int sig) { (void)sig; }

static void setup_pool(void)
{
	int p[2];
	if (pipe(p) == 0) { /* drained */
		add(p[0]);
		add(p[1]);
		drain_fds[ndrain++] = p[0];
	}
	if (pipe2(p, O_NONBLOCK) == 0) { /* never drained: fills up */
		add(p[0]);
		add(p[1]);
	}
	if (pipe(p) == 0) { /* the reader left */
		close(p[0]);
		add(p[1]);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0) {
		add(p[0]);
		add(p[1]);
		drain_fds[ndrain++] = p[1];
	}
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, p) == 0)
		add(p[0]);
	add(socket(AF_INET, SOCK_STREAM, 0));
	add(socket(AF_INET, SOCK_DGRAM, 0));
	add(eventfd(3, 0));
	add(epoll_create1(0));
	add(timerfd_create(CLOCK_MONOTONIC, 0));
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR2);
	add(signalfd(-1, &ss, 0));
	add(memfd_create("fz", 0));
	add(open(".", O_RDONLY | O_DIRECTORY));
	add(open("/", O_PATH));
	add(open("/proc/self/maps", O_RDONLY));
	add(open("/proc/self/status", O_RDONLY));
	add(open("/proc/self/ns/pid", O_RDONLY));
	add(open("/dev/null", O_RDWR));
	add(open("/dev/zero", O_RDONLY));
	add(open("/dev/full", O_WRONLY));
	char path[PATH_MAX];
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "img%d", i);
		add(open(path, O_RDWR | O_CREAT | O_TRUNC, 0600));
		add(open(path, O_RDONLY));
		add(open(path, O_PATH));
	}
	snprintf(path, sizeof path, "%s/base-a.img", workdir);
	add(open(path, O_RDONLY));
	snprintf(path, sizeof path, "%s/base-b.img", workdir);
	add(open(path, O_RDONLY));
	int closed = open("/dev/null", O_RDONLY);
	close(closed);
	add(closed);
	sinkfd = open("/dev/null", O_WRONLY);
}

static void *drainer(void *p)
{
	(void)p;
	char buf[65536];
	for (int i = 0; i < ndrain; i++)
		fcntl(drain_fds[i], F_SETFL, O_NONBLOCK);
	while (!round_stop) {
		int any = 0;
		for (int i = 0; i < ndrain; i++)
			while (read(drain_fds[i], buf, sizeof buf) > 0)
				any = 1;
		if (!any)
			usleep(500);
	}
	return NULL;
}

/* kicker interrupts the workers now and then (SIGUSR1, no SA_RESTART) so that a call blocked on
 * a pipe nobody reads ends with EINTR. */
static void *kicker(void *p)
{
	(void)p;
	while (!round_stop) {
		usleep(20000);
		for (int i = 0; i < nworkers; i++)
			if (worker_tids[i] > 0)
				syscall(SYS_tgkill, round_pid, worker_tids[i], SIGUSR1);
	}
	return NULL;
}

static const int types_pick[] = { 1, 1, 1, 1, 6, 6, 7, 7, 2, 2, 2, 3, 3, 4, 0, 5, 8, 9, -1, 1000, INT_MIN, INT_MAX };

static int pick_type(void)
{
	if (rndn(20) == 0)
		return (int)rnd();
	return types_pick[rndn(sizeof types_pick / sizeof types_pick[0])];
}

static int pick_fd(void)
{
	switch (rndn(12)) {
	case 0: return -1;
	case 1: return (int[]){ -2, INT_MIN, INT_MAX, 1000, 3 }[rndn(5)];
	default: return pool[rndn(npool)];
	}
}

enum { P_SELF, P_CALLER, P_VICTIM, P_FODDER, P_OTHERS };

static pid_t pick_pid(int *class)
{
	*class = P_OTHERS;
	switch (rndn(14)) {
	case 0: case 1: *class = P_SELF; return -1;
	case 2: *class = P_SELF; return getpid();
	case 3: *class = P_SELF; return gettid_();
	case 4: case 5: *class = P_VICTIM; return sh->victims[rndn(NVICTIM)];
	case 6: case 7: case 8: *class = P_FODDER; return sh->fodder[rndn(NFODDER)];
	case 9: *class = P_FODDER; return sh->recent;
	case 10: *class = P_CALLER; return (int[]){ 0, 1 }[rndn(2)];
	case 11: *class = P_CALLER; return main_pid;
	case 12: return (int[]){ 99999, 4194303, -2, -100, INT_MIN, INT_MAX }[rndn(6)];
	default: return (pid_t)rnd();
	}
}

static int pick_retval(void)
{
	switch (rndn(6)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return 2;
	case 3: return (int[]){ -1, INT_MAX, INT_MIN, 1 << 29, 1 << 30, 3 }[rndn(6)];
	default: return (int)rnd();
	}
}

/* fuzz_call makes one random call. Freezes that could write an image of the main process or the
 * bystander go to /dev/null (a worker must never thaw a copy of the main process), and no call
 * may kill a tree beyond fodder (CKPT_TREE_KILL only for fodder pids). */
static void fuzz_call(void)
{
	int type = pick_type(), fd = pick_fd(), cls, retval = pick_retval();
	pid_t pid = pick_pid(&cls);
	/* Mostly valid arguments where a type wants fixed ones, so that calls get past the argument
	 * checks to the work behind them. */
	if ((type == 2 || type == 4 || type == 7) && rndn(4))
		pid = -1, cls = P_SELF;
	if (type == 7 && rndn(4))
		fd = -1, retval = rndn(2);
	if (type == 4 && rndn(4))
		retval = rndn(2) * 2;
	if ((type == 3 || type == 6) && rndn(2))
		retval = type == 3 ? (int)rndn(2) : 0;
	if (pid == bystander_pid)
		pid = -1, cls = P_SELF;
	if (pid == 0 || pid == 1 || pid == main_pid)
		cls = P_CALLER;
	for (int i = 0; i < NVICTIM; i++)
		if (pid == sh->victims[i])
			cls = P_VICTIM;
	if (cls == P_CALLER || (type == 3 && pid == 0))
		fd = sinkfd;
	if (type == 3 && cls != P_FODDER)
		retval &= ~CKPT_TREE_KILL;
	int inchild = (type == 2 || type == 4) && rndn(2);
	if (type == 2 || type == 4)
		atomic_fetch_add(&sh->thaws, 1);
	if (inchild) {
		/* In a child of its own: a successful thaw replaces only the child. */
		pid_t c = fork();
		if (c == 0) {
			long r = sys_checkpoint(type, fd, pid, retval);
			record(type, r, errno);
			atomic_fetch_add(&sh->calls, 1);
			_exit(0);
		}
		if (c < 0)
			return;
		sh->recent = c;
		for (int i = 0; i < 1000 && waitpid(c, NULL, WNOHANG) == 0; i++)
			usleep(1000);
		kill(c, SIGKILL);
		waitpid(c, NULL, 0);
		return;
	}
	unsigned long thaws = atomic_load(&sh->thaws);
	long r = sys_checkpoint(type, fd, pid, retval);
	int e = errno;
	if (getpid() != round_pid)
		syscall(SYS_exit_group, 0); /* a thawed copy of this process in another one */
	if (r != 0 && atomic_load(&sh->thaws) != thaws && (type == 1 || type == 6)) {
		/* Perhaps a thaw of an image of this process returned its retval here. */
		atomic_fetch_add(&sh->waived, 1);
	} else {
		record(type, r, e);
	}
	atomic_fetch_add(&sh->calls, 1);
}

static void ckpt_handler(int sig) { (void)sig; }

static void storm(void)
{
	int sig = rndn(3) ? SIGCKPT : SIGCKPTEXIT;
	int n = 1 + rndn(20);
	pid_t to;
	switch (rndn(4)) {
	case 0:
		to = getpid();
		sig = SIGCKPT;
		break;
	case 1:
		to = sh->victims[rndn(NVICTIM)];
		sig = SIGCKPT;
		break;
	default:
		to = sh->fodder[rndn(NFODDER)];
		break;
	}
	if (to <= 0 || to == bystander_pid || to == main_pid)
		return;
	for (int i = 0; i < n; i++) {
		if (to == getpid() && rndn(2))
			syscall(SYS_tgkill, to, gettid_(), sig);
		else if (rndn(2))
			kill(to, sig);
		else
			sigqueue(to, sig, (union sigval){ .sival_int = i });
	}
}

static void dispositions(void)
{
	struct sigaction sa = { 0 };
	switch (rndn(5)) {
	case 0:
		sa.sa_handler = SIG_DFL;
		break;
	case 1:
		sa.sa_handler = SIG_IGN;
		break;
	case 2:
		sa.sa_handler = ckpt_handler;
		break;
	case 3:
		sa.sa_handler = ckpt_handler;
		sa.sa_flags = SA_RESTART;
		break;
	default: {
		sigset_t ss;
		sigemptyset(&ss);
		sigaddset(&ss, SIGCKPT);
		pthread_sigmask(rndn(2) ? SIG_BLOCK : SIG_UNBLOCK, &ss, NULL);
		return;
	}
	}
	sigaction(SIGCKPT, &sa, NULL);
}

static void thaw_by_name(void)
{
	static const char *names[] = { "fz-round.ckpt", "fz-victim.ckpt", "fz-forker.ckpt", "fz-mutual.ckpt",
		"fz-tracee.ckpt", "fz-ptracer.ckpt", "ckpt_fuzz.ckpt", "img0", "img1" };
	int fd = open(names[rndn(sizeof names / sizeof names[0])], O_RDONLY);
	if (fd < 0)
		return;
	atomic_fetch_add(&sh->thaws, 1);
	pid_t c = fork();
	if (c == 0) {
		long r = sys_checkpoint(CKPT_THAW, fd, -1, pick_retval());
		record(CKPT_THAW, r, errno);
		atomic_fetch_add(&sh->calls, 1);
		_exit(0);
	}
	close(fd);
	if (c < 0)
		return;
	for (int i = 0; i < 1000 && waitpid(c, NULL, WNOHANG) == 0; i++)
		usleep(1000);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
}

static void exiter(void)
{
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	if (c > 0) {
		sh->recent = c;
		/* Freeze it while it exits (or after). */
		sys_checkpoint(CKPT_FREEZE, sinkfd, c, 0);
		waitpid(c, NULL, 0);
	}
}

struct worker_arg {
	uint64_t seed;
	int idx;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;
	worker_tids[a->idx] = gettid_();
	seed_rng(a->seed, round_pid, a->idx);
	for (unsigned long i = 0; i < round_calls_each; i++) {
		switch (rndn(20)) {
		case 0: case 1: storm(); break;
		case 2: dispositions(); break;
		case 3: thaw_by_name(); break;
		case 4: exiter(); break;
		default: fuzz_call(); break;
		}
	}
	return NULL;
}

static pid_t spawn(void (*fn)(int), int arg)
{
	pid_t c = fork();
	if (c == 0) {
		fn(arg);
		_exit(0);
	}
	return c;
}

static void victim_main(int idx) { victim(idx, 0); }
static void forker_main(int idx) { (void)idx; forker(); }
static void ptracer_main(int slot) { ptracer(slot); }
static void exec_main(int idx)
{
	(void)idx;
	char *argv[] = { (char *)self_exe, "exec-racer", NULL };
	exec_racer(argv);
}
static int mutual_fd;
static void mutual_main(int me) { mutual(me, me ^ 1, mutual_fd); }
static void sleeper_main(int idx)
{
	(void)idx;
	prctl(PR_SET_NAME, "fz-sleeper");
	for (;;)
		pause();
}

static void round_leader(uint64_t seed, int round, unsigned long calls, int threads)
{
	round_pid = getpid();
	prctl(PR_SET_NAME, "fz-round");
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/round", workdir);
	if (chdir(dir) != 0)
		_exit(3);
	seed_rng(seed, round, 1000);
	for (int i = 0; i < NVICTIM; i++)
		sh->victims[i] = spawn(victim_main, i);
	for (int i = 0; i < NFODDER; i++)
		sh->fodder[i] = 0;
	/* Fodder slots: 0, 1 freeze each other; 2 forker; 3 execve; 4 ptracer (5 its tracee); 6
	 * sleeper; the rest: more of the same. */
	mutual_fd = open("mutual.img", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	sh->fodder[0] = spawn(mutual_main, 0);
	sh->fodder[1] = spawn(mutual_main, 1);
	sh->fodder[2] = spawn(forker_main, 0);
	sh->fodder[3] = spawn(exec_main, 0);
	sh->fodder[4] = spawn(ptracer_main, 5);
	sh->fodder[6] = spawn(sleeper_main, 0);
	sh->fodder[7] = spawn(exec_main, 0);
	sh->fodder[8] = spawn(forker_main, 0);
	sh->fodder[9] = spawn(sleeper_main, 0);
	sh->fodder[10] = spawn(ptracer_main, 11);
	setup_pool();

	struct sigaction sa = { .sa_handler = noop };
	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: interrupts blocked calls */
	signal(SIGPIPE, SIG_IGN);
	if (rndn(4) == 0) {
		/* Unprivileged round: nobody may freeze the root processes. */
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(3);
		if (rndn(2))
			prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	}
	round_calls_each = calls / threads + 1;
	nworkers = threads;
	struct worker_arg args[16];
	pthread_t dr, ki;
	pthread_create(&dr, NULL, drainer, NULL);
	for (int i = 0; i < nworkers; i++) {
		args[i] = (struct worker_arg){ seed ^ (uint64_t)round << 32, i };
		pthread_create(&workers[i], NULL, worker, &args[i]);
	}
	pthread_create(&ki, NULL, kicker, NULL);
	for (int i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	syscall(SYS_exit_group, 0);
}

/* ---- the main process ---- */

/* proc_read reads /proc/<pid>/<file> into out (NUL-terminated, cut at the first newline) and
 * returns its first byte: 0 if the file could not be read (the process is gone). */
static char proc_read(pid_t pid, const char *file, char *out, size_t n)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
	int fd = open(path, O_RDONLY);
	ssize_t r = fd < 0 ? -1 : read(fd, out, n - 1);
	if (fd >= 0)
		close(fd);
	out[r > 0 ? r : 0] = 0;
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = 0;
	return out[0];
}

/* alive reports whether pid exists and is not a zombie. */
static int alive(pid_t pid)
{
	char buf[512];
	if (!proc_read(pid, "stat", buf, sizeof buf))
		return 0;
	char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

/* proc_state reads pid's /proc stat line into out (empty if it is gone). */
static void proc_state(pid_t pid, char *out, size_t n)
{
	proc_read(pid, "stat", out, n);
}

static void reap(void)
{
	while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
		;
}

/* sweep kills every process but the main process and the bystander, and waits (up to 60 s on a
 * loaded machine) until they are gone: a process that survives SIGKILL is a hang in the sentry. */
static int sweep_except(const volatile pid_t *keep, int nkeep)
{
	for (int tries = 0; tries < 60000; tries++) {
		int left = 0;
		DIR *d = opendir("/proc");
		struct dirent *de;
		while (d && (de = readdir(d))) {
			pid_t p = atoi(de->d_name);
			if (p <= 0 || p == main_pid || p == bystander_pid)
				continue;
			int kept = 0;
			for (int i = 0; i < nkeep; i++)
				kept |= keep[i] == p;
			if (kept)
				continue;
			if (!alive(p))
				continue;
			left++;
			kill(p, SIGKILL);
			if (tries == 59999) {
				char st[512];
				proc_state(p, st, sizeof st);
				printf("FAIL unkillable process: %s\n", st);
			}
		}
		if (d)
			closedir(d);
		reap();
		if (!left)
			return 0;
		usleep(1000);
	}
	return -1;
}

static int sweep(void) { return sweep_except(NULL, 0); }

/* advanced waits (up to 30 s) until every counter moved. */
static int advanced(volatile unsigned long *c, int n)
{
	return counters_advance(c, n, 30000);
}

static void rm_round_dir(void)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/round", workdir);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char p[PATH_MAX * 2];
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	mkdir(dir, 0777);
	chmod(dir, 0777);
}

static int fails, stalled, replaced;
static char comm_of(pid_t pid, char *out, size_t n);

static void run_round(uint64_t seed, int round, unsigned long calls, int threads)
{
	rm_round_dir();
	unsigned long start = atomic_load(&sh->calls);
	pid_t r = fork();
	if (r == 0) {
		round_leader(seed, round, calls, threads);
		_exit(0);
	}
	/* The round ends when its leader is done, or when the calls stop being counted (a thaw
	 * replaced the leader with a copy whose records go elsewhere, or every thread is stuck). */
	unsigned long last = start;
	int still = 0;
	for (;;) {
		int st;
		if (waitpid(r, &st, WNOHANG) == r)
			break;
		unsigned long now = atomic_load(&sh->calls);
		if (now - start >= calls + calls / 2)
			break;
		char name[32];
		if (still % 100 == 99 && comm_of(r, name, sizeof name) && strcmp(name, "fz-round") != 0) {
			/* The leader thawed an image of another program (a forker, an execve racer). */
			replaced++;
			break;
		}
		if (now == last) {
			if (++still >= 5000) {
				stalled++;
				break;
			}
		} else {
			still = 0;
			last = now;
		}
		usleep(1000);
	}
	kill(r, SIGKILL);
	/* A killed leader that is not gone within 20 s is the sandbox-wide lock-up of
	 * docs/fuzzing.md (finding 4): say so once, for the test's watchdog to take the sentry's
	 * stacks, and go on waiting. */
	for (int i = 0; waitpid(r, NULL, __WALL | WNOHANG) == 0; i++) {
		if (i == 20000) {
			printf("HANG round %d: the killed round leader %d is not gone after 20 s\n", round, r);
			fflush(stdout);
		}
		usleep(1000);
	}
	/* Everything but the victims goes first: nothing of the round may run on meanwhile. */
	if (sweep_except(sh->victims, NVICTIM) != 0)
		fails++;
	for (int i = 0; i < NVICTIM; i++) {
		pid_t v = sh->victims[i];
		if (v <= 0)
			continue;
		if (!alive(v)) {
			printf("FAIL round %d: victim %d (pid %d) is gone\n", round, i, v);
			fails++;
			continue;
		}
		if (!advanced(&sh->victim_count[i * VTHREADS], VTHREADS)) {
			char st[512];
			proc_state(v, st, sizeof st);
			printf("FAIL round %d: victim %d does not run: %s\n", round, i, st);
			fails++;
		}
		if (sh->victim_bad[i]) {
			printf("FAIL round %d: victim %d memory changed\n", round, i);
			fails++;
		}
	}
	if (sweep() != 0)
		fails++;
	for (int i = 0; i < NVICTIM; i++)
		sh->victims[i] = 0;
}

/* ---- mutated images thawed by nobody ---- */
struct image {
	unsigned char *b;
	size_t n;
};

static struct image read_image(const char *path)
{
	struct image im = { 0 };
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		return im;
	im.b = malloc(st.st_size + 1);
	im.n = 0;
	while (im.n < (size_t)st.st_size) {
		ssize_t k = read(fd, im.b + im.n, st.st_size - im.n);
		if (k <= 0)
			break;
		im.n += k;
	}
	close(fd);
	return im;
}

/* meta_end is where an image's headers and notes end: mutations aim there most often. */
static size_t meta_end(const struct image *im)
{
	if (im->n < sizeof(Elf64_Ehdr))
		return im->n;
	const Elf64_Ehdr *eh = (const void *)im->b;
	size_t end = eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr);
	for (int i = 0; i < eh->e_phnum && eh->e_phoff + (i + 1) * sizeof(Elf64_Phdr) <= im->n; i++) {
		const Elf64_Phdr *ph = (const void *)(im->b + eh->e_phoff + i * sizeof(Elf64_Phdr));
		if (ph->p_type == PT_NOTE && ph->p_offset + ph->p_filesz > end)
			end = ph->p_offset + ph->p_filesz;
	}
	return end < im->n ? end : im->n;
}

/* base: a process (as root, or as nobody) with threads and fds of several kinds freezes itself
 * into path. Thawed (its call returns 1), it exits 77 if it runs as nobody, 78 otherwise. */
static int base_threads;
static void *base_spin(void *p)
{
	for (;;)
		pause();
	return p;
}

static void make_base(const char *path, int as_nobody, int threads)
{
	pid_t c = fork();
	if (c == 0) {
		prctl(PR_SET_NAME, "fz-base");
		int p[2];
		if (pipe(p) != 0)
			_exit(2);
		at(eventfd(5, 0), 10);
		at(open(workdir, O_RDONLY | O_DIRECTORY), 11);
		at(timerfd_create(CLOCK_MONOTONIC, 0), 12);
		at(memfd_create("base", 0), 13);
		char *shm = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (shm != MAP_FAILED)
			strcpy(shm, "shared");
		base_threads = threads;
		pthread_t th;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 64 << 10); /* small images: mutants are written often */
		for (int i = 0; i < threads; i++)
			pthread_create(&th, &attr, base_spin, NULL);
		if (as_nobody) {
			if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
				_exit(2);
			prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		}
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
		if (r == 0) {
			fchmod(fd, 0644);
			syscall(SYS_exit_group, 0);
		}
		if (r == 1)
			syscall(SYS_exit_group, getuid() == NOBODY && geteuid() == NOBODY && getegid() == NOBODY ? 77 : 78);
		syscall(SYS_exit_group, 2);
	}
	int st;
	waitpid(c, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("FAIL making base image %s: status %#x\n", path, st);
		fails++;
	}
}

enum { K_NONE, K_FLIP_META, K_FLIP_ANY, K_TRUNC, K_SPLICE, K_HDR_SPLICE, K_NOTE_JUNK, K_PHDR_DUP };
static const char *kind_names[NKIND] = { "none", "flip-meta", "flip-any", "truncate", "splice", "header-splice",
	"note-junk", "phdr-dup" };
enum { O_ERRNO_DOC, O_THAWED, O_ROOT, O_SIGNAL, O_TIMEOUT_THAWED, O_HANG, O_OTHER, O_ERRNO_ODD, O_KILLED };
static const char *outcome_names[NOUTCOME] = { "errno", "thawed", "ROOT", "signal", "thawed-timeout", "HANG",
	"thawed-exit", "THAW-RETURNED", "KILLED" };

static struct image mutate(int kind, const struct image *a, const struct image *b)
{
	struct image m = { malloc(a->n + b->n + 64), a->n };
	memcpy(m.b, a->b, a->n);
	size_t me = meta_end(a);
	switch (kind) {
	case K_FLIP_META:
	case K_FLIP_ANY: {
		int flips = 1 + rndn(8);
		for (int i = 0; i < flips && m.n; i++) {
			size_t at_ = kind == K_FLIP_META ? rndn(me ? me : 1) : rndn(m.n);
			m.b[at_] ^= 1u << rndn(8);
		}
		break;
	}
	case K_TRUNC:
		m.n = rndn(2) ? rndn(me + 1) : rndn(a->n);
		break;
	case K_SPLICE: {
		/* a's first k bytes, then b's from k. */
		size_t k = rndn(me + 1);
		if (k > b->n)
			k = b->n;
		memcpy(m.b + k, b->b + k, b->n - k);
		m.n = b->n;
		break;
	}
	case K_HDR_SPLICE: {
		/* b's ELF header and program headers over a. */
		const Elf64_Ehdr *eh = (const void *)b->b;
		size_t h = eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr);
		if (h > b->n)
			h = b->n;
		if (h > m.n) {
			memcpy(m.b, b->b, b->n);
			m.n = b->n;
		} else {
			memcpy(m.b, b->b, h);
		}
		break;
	}
	case K_NOTE_JUNK: {
		size_t from = sizeof(Elf64_Ehdr) + rndn(me > sizeof(Elf64_Ehdr) ? me - sizeof(Elf64_Ehdr) : 1);
		size_t len = 1 + rndn(64);
		for (size_t i = from; i < from + len && i < m.n; i++)
			m.b[i] = (unsigned char)rnd();
		break;
	}
	case K_PHDR_DUP: {
		/* One program header copied over another: overlapping or repeated segments. */
		Elf64_Ehdr *eh = (void *)m.b;
		if (eh->e_phnum >= 2 && eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr) <= m.n) {
			int i = rndn(eh->e_phnum), j = rndn(eh->e_phnum);
			memcpy(m.b + eh->e_phoff + j * sizeof(Elf64_Phdr), m.b + eh->e_phoff + i * sizeof(Elf64_Phdr),
			       sizeof(Elf64_Phdr));
			if (rndn(2)) {
				Elf64_Phdr *ph = (void *)(m.b + eh->e_phoff + j * sizeof(Elf64_Phdr));
				ph->p_vaddr += 4096 * (rndn(3) - 1);
			}
		}
		break;
	}
	}
	return m;
}

static int write_all(int fd, const unsigned char *b, size_t n)
{
	while (n) {
		ssize_t k = write(fd, b, n);
		if (k <= 0)
			return -1;
		b += k;
		n -= k;
	}
	return 0;
}

/* write_sparse writes b to the new file fd, skipping pages of zeros (images are mostly holes). */
static int write_sparse(int fd, const unsigned char *b, size_t n)
{
	static const unsigned char zero[4096];
	for (size_t off = 0; off < n; off += 4096) {
		size_t len = n - off < 4096 ? n - off : 4096;
		if (len == 4096 && !memcmp(b + off, zero, 4096)) {
			if (lseek(fd, 4096, SEEK_CUR) < 0)
				return -1;
			continue;
		}
		if (write_all(fd, b + off, len) != 0)
			return -1;
	}
	return ftruncate(fd, n);
}

static char comm_of(pid_t pid, char *out, size_t n)
{
	return proc_read(pid, "comm", out, n);
}

/* thaw_as_nobody thaws the image m in a child that dropped to nobody, from a file or (via_pipe)
 * a pipe, and returns the outcome. The errno of a failed thaw is recorded as a CKPT_THAW result. */
static int thaw_as_nobody(const struct image *m, int via_pipe)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/mutant.img", workdir);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write_sparse(fd, m->b, m->n) != 0) {
		printf("FAIL writing mutant: %s\n", strerror(errno));
		exit(1);
	}
	close(fd);
	int res[2];
	if (pipe(res) != 0)
		exit(1);
	pid_t c = fork();
	if (c == 0) {
		close(res[0]);
		prctl(PR_SET_NAME, "fz-thawer");
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(3);
		int in = -1;
		if (via_pipe) {
			int p[2];
			if (pipe(p) != 0)
				_exit(3);
			pid_t w = fork();
			if (w == 0) {
				close(p[0]);
				int f = open(path, O_RDONLY);
				char buf[65536];
				ssize_t k;
				while (f >= 0 && (k = read(f, buf, sizeof buf)) > 0)
					if (write_all(p[1], (unsigned char *)buf, k) != 0)
						break;
				_exit(0);
			}
			close(p[1]);
			in = p[0];
		} else {
			in = open(path, O_RDONLY);
		}
		long r = sys_checkpoint(CKPT_THAW, in, -1, 1);
		int e = errno;
		record(CKPT_THAW, r, e);
		int msg[2] = { (int)r, e };
		if (write(res[1], msg, sizeof msg) != sizeof msg)
			_exit(4);
		_exit(0);
	}
	close(res[1]);
	int st = 0, done = 0;
	for (int i = 0; i < 60000; i++) {
		if (waitpid(c, &st, WNOHANG) == c) {
			done = 1;
			break;
		}
		usleep(1000);
	}
	int out;
	if (!done) {
		char name[32];
		comm_of(c, name, sizeof name);
		out = strcmp(name, "fz-thawer") == 0 ? O_HANG : O_TIMEOUT_THAWED;
		if (out == O_HANG)
			printf("FAIL a thaw as nobody did not finish in 60 s (mutant of %zu bytes)\n", m->n);
		kill(c, SIGKILL);
		waitpid(c, &st, 0);
	} else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
		/* A thaw that fails after its point of no return kills the caller (thaw.go): the image
		 * passed validation but could not be thawed, which validation must catch (EINVAL). */
		out = O_KILLED;
	} else if (WIFSIGNALED(st)) {
		/* The thawed program crashed (its memory and registers are the image's). */
		out = O_SIGNAL;
	} else if (WEXITSTATUS(st) == 77) {
		out = O_THAWED;
	} else if (WEXITSTATUS(st) == 78) {
		printf("FAIL a thawed mutant runs with uid/euid/egid other than nobody\n");
		out = O_ROOT;
	} else if (WEXITSTATUS(st) == 0) {
		/* The thawer reports its call's result; without a report, the thawed program (whose
		 * registers or memory the mutation changed) exited 0 on its own. */
		int msg[2];
		if (read(res[0], msg, sizeof msg) != sizeof msg)
			out = O_OTHER;
		else
			out = msg[0] == -1 ? O_ERRNO_DOC : O_ERRNO_ODD;
	} else {
		out = O_OTHER;
	}
	close(res[0]);
	sweep(); /* the pipe writer, a thawed program's children */
	return out;
}

static void mutants(unsigned long n)
{
	char pa[PATH_MAX], pb[PATH_MAX];
	snprintf(pa, sizeof pa, "%s/base-a.img", workdir);
	snprintf(pb, sizeof pb, "%s/base-b.img", workdir);
	struct image a = read_image(pa), b = read_image(pb);
	if (!a.n || !b.n) {
		printf("FAIL base images missing\n");
		fails++;
		return;
	}
	printf("base images: %zu and %zu bytes\n", a.n, b.n);
	/* The unmutated images must thaw as nobody, from a file and from a pipe. */
	for (int i = 0; i < 4; i++) {
		const struct image *im = i & 1 ? &b : &a;
		int o = thaw_as_nobody(im, i >= 2);
		if (o != O_THAWED) {
			printf("FAIL control thaw of base-%c (%s) as nobody: %s\n", i & 1 ? 'b' : 'a', i >= 2 ? "pipe" : "file",
			       outcome_names[o]);
			fails++;
		}
	}
	for (unsigned long i = 0; i < n; i++) {
		int kind = 1 + rndn(NKIND - 1);
		int swap = rndn(2);
		struct image m = mutate(kind, swap ? &b : &a, swap ? &a : &b);
		int o = thaw_as_nobody(&m, rndn(3) == 0);
		if (o == O_ROOT || o == O_HANG || o == O_KILLED || o == O_ERRNO_ODD) {
			char keep[PATH_MAX];
			snprintf(keep, sizeof keep, "%s/failed-%lu.img", workdir, i);
			int fd = open(keep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd >= 0) {
				write_sparse(fd, m.b, m.n);
				close(fd);
			}
			printf("FAIL mutant %lu (%s of base-%c): %s; kept as %s\n", i, kind_names[kind], swap ? 'b' : 'a',
			       outcome_names[o], keep);
			fails++;
		}
		atomic_fetch_add(&sh->mutants[kind][o], 1);
		free(m.b);
	}
}

/* ---- the final checkpt freeze+thaw ---- */
static int run_checkpt(char *const argv[])
{
	pid_t c = fork();
	if (c == 0) {
		execv(argv[0], argv);
		perror("execv checkpt");
		_exit(127);
	}
	int st;
	for (int i = 0; i < 120000; i++) {
		if (waitpid(c, &st, WNOHANG) == c)
			return st;
		usleep(1000);
	}
	printf("FAIL %s %s did not finish in 120 s\n", argv[1], argv[2]);
	kill(c, SIGKILL);
	waitpid(c, &st, 0);
	return -1;
}

static void final_check(const char *runsc)
{
	pid_t v = fork();
	if (v == 0) {
		victim(0, 1);
		_exit(0);
	}
	char pid[32], img[PATH_MAX];
	snprintf(pid, sizeof pid, "%d", v);
	snprintf(img, sizeof img, "%s/final.img", workdir);
	int st = run_checkpt((char *const[]){ (char *)runsc, "checkpt", "-c", pid, "-o", img, NULL });
	printf("final-freeze status=%d\n", st);
	kill(v, SIGKILL);
	waitpid(v, NULL, 0);
	st = run_checkpt((char *const[]){ (char *)runsc, "checkpt", "-r", img, NULL });
	printf("final-thaw status=%d\n", st);
	fflush(stdout);
}

/* one_call is the regression tests' mode (ckpt_fuzz call TYPE FDKIND): one sys_checkpoint(TYPE,
 * fd, pid, 0) with fd of the named kind and pid -1 (a child for CKPT_FREEZE_TREE), printing
 * "call ret=R errno=NAME" (errno "none" for 0). */
static int one_call(int type, const char *kind)
{
	int fd = -1;
	if (!strcmp(kind, "udp"))
		fd = socket(AF_INET, SOCK_DGRAM, 0);
	else if (!strcmp(kind, "tcp"))
		fd = socket(AF_INET, SOCK_STREAM, 0);
	else if (!strcmp(kind, "unix-dgram"))
		fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	else if (!strcmp(kind, "unix-stream"))
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
	else if (!strcmp(kind, "pipe-closed")) {
		int p[2];
		if (pipe(p) == 0) {
			close(p[0]);
			fd = p[1];
		}
	} else {
		fprintf(stderr, "unknown fd kind %s\n", kind);
		return 2;
	}
	if (fd < 0) {
		perror(kind);
		return 1;
	}
	/* SIGPIPE keeps its default action: a freeze must not send it. A tree freeze needs a tree
	 * other than the caller's: a child. */
	pid_t pid = -1;
	if (type == CKPT_FREEZE_TREE) {
		pid = fork_dying_with_parent();
		if (pid == 0)
			for (;;)
				pause();
	}
	long r = sys_checkpoint(type, fd, pid, 0);
	int e = errno;
	if (type == CKPT_FREEZE_ASYNC && r == 0) {
		r = sys_checkpoint(CKPT_WAIT, -1, -1, 0);
		e = errno;
	}
	printf("call ret=%ld errno=%s\n", r, r < 0 ? strerrorname_np(e) : "none");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "exec-racer"))
		exec_racer(argv);
	if (argc == 4 && !strcmp(argv[1], "call"))
		return one_call(atoi(argv[2]), argv[3]);
	if (argc < 5) {
		fprintf(stderr, "usage: %s SEED CALLS MUTANTS RUNSC_CKPT\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	uint64_t seed = strtoull(argv[1], NULL, 0);
	unsigned long calls = strtoul(argv[2], NULL, 0), nmut = strtoul(argv[3], NULL, 0);
	const char *runsc = argv[4];
	static char exe[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[k > 0 ? k : 0] = 0;
	self_exe = exe;
	if (!getcwd(workdir, sizeof workdir))
		return 1;
	printf("seed=%llu calls=%lu mutants=%lu\n", (unsigned long long)seed, calls, nmut);
	main_pid = getpid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_NAME, "fz-main");
	signal(SIGPIPE, SIG_IGN);
	chmod(workdir, 0777);
	int shfd = open(".shared", O_RDWR | O_CREAT | O_TRUNC, 0666);
	if (shfd < 0 || fchmod(shfd, 0666) != 0 || ftruncate(shfd, sizeof *sh) != 0) {
		perror(".shared");
		return 1;
	}
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, shfd, 0);
	if (sh == MAP_FAILED)
		return 1;
	close(shfd);
	seed_rng(seed, 0, 0);

	bystander_pid = fork_dying_with_parent();
	if (bystander_pid == 0) {
		bystander();
		_exit(0);
	}

	char pa[PATH_MAX], pb[PATH_MAX];
	snprintf(pa, sizeof pa, "%s/base-a.img", workdir);
	snprintf(pb, sizeof pb, "%s/base-b.img", workdir);
	make_base(pa, 0, 0);
	make_base(pb, 1, 3);

	/* The storm: rounds of about 150 calls from 6 threads. */
	struct timespec t0, t1, t2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int round = 0;
	while (atomic_load(&sh->calls) < calls) {
		run_round(seed, round, calls < 150 ? calls : 150, 6);
		round++;
	}
	printf("rounds=%d stalled=%d replaced=%d calls=%lu waived=%lu\n", round, stalled, replaced,
	       atomic_load(&sh->calls), atomic_load(&sh->waived));

	clock_gettime(CLOCK_MONOTONIC, &t1);
	seed_rng(seed, 1, 1);
	mutants(nmut);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	printf("phases: storm %lds, mutants %lds\n", (long)(t1.tv_sec - t0.tv_sec), (long)(t2.tv_sec - t1.tv_sec));

	final_check(runsc);

	for (int t = 0; t <= NTYPES; t++)
		for (int s = 0; s < NSLOT; s++) {
			unsigned long c = atomic_load(&sh->counts[t][s]);
			if (!c)
				continue;
			char tn[32];
			if (t == TYPE_OTHER)
				strcpy(tn, "other");
			else
				snprintf(tn, sizeof tn, "%d", known_types[t]);
			const char *ret = s == 0 ? "0" : s == 1 ? "1" : s == 2 ? "n" : s == 3 ? "neg" : "-1";
			const char *en = s >= 4 ? strerrorname_np(s - 4) : "none";
			printf("result type=%s ret=%s errno=%s count=%lu\n", tn, ret, en ? en : "unknown", c);
		}
	for (int kd = 0; kd < NKIND; kd++)
		for (int o = 0; o < NOUTCOME; o++) {
			unsigned long c = atomic_load(&sh->mutants[kd][o]);
			if (c)
				printf("mutant kind=%s outcome=%s count=%lu\n", kind_names[kd], outcome_names[o], c);
		}

	unsigned long before = sh->bystander_count;
	if (!alive(bystander_pid) || !advanced(&sh->bystander_count, 1) || sh->bystander_bad) {
		printf("FAIL bystander: alive=%d bad=%d\n", alive(bystander_pid), sh->bystander_bad);
		fails++;
	} else {
		printf("bystander-ok count=%lu\n", before);
	}
	printf("fails=%d\nfuzz-done\n", fails);
	return 0;
}
