/* thaw_roundtrip: state that a thaw must bring back, checked from inside the thawed program.
 *
 * usage: thaw_roundtrip IMAGE MAPFILE LOGFILE
 *
 * Fills 32 MiB (every other page) with a pattern, maps MAPFILE privately and dirties its second page,
 * writes "before\n" to LOGFILE (not O_APPEND: the offset must come back), installs a SIGUSR1
 * handler, blocks SIGUSR2 and leaves one pending, ignores SIGTERM, sets an alternate signal stack and
 * a 1000 s ITIMER_REAL, loads xmm0-xmm15 and rbx/r12-r15 with known values and
 * freezes itself into IMAGE with those registers live across the syscall. Then it prints its
 * metadata ("comm=.. exe=.. cmdline=.. brk=.. vdso=.. procvdso=.. brkgrow=..", which a thaw must
 * leave as it was, brk still growing) and one line
 *   r=<sys_checkpoint result> sum=<checksum> map=<bytes> regs=<ok> usr1=<n> usr2blocked=<0|1>
 *   termign=<0|1> clock=<ok> alt=<ok> itimer=<ok> pending=<ok>
 * and writes "after r=<r>\n" to LOGFILE. With r == 0 (the freeze itself) it then kills itself with
 * SIGKILL, as if the process had been killed after the freeze; a thaw (r == 1) exits 0 if every check
 * passed, 1 otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../../include/ckpt.h"

#define BIG (32UL << 20)

static volatile int usr1;
static void on_usr1(int sig) { (void)sig; usr1++; }

/* checkpoint_with_live_regs calls sys_checkpoint(CKPT_FREEZE, fd, -1, 0) with xmm0-15, rbx and
 * r12-r15 holding known values, and reports whether they still hold them after the call. */
static long checkpoint_with_live_regs(int fd, int *regs_ok)
{
	uint64_t in[16], out[16], g_out[5];
	for (int i = 0; i < 16; i++)
		in[i] = 0x1111111111111111ULL * (uint64_t)(i + 1) ^ 0xa5a5a5a5ULL;
	long ret;
	register long rdi __asm__("rdi") = CKPT_FREEZE;
	register long rsi __asm__("rsi") = fd;
	register long rdx __asm__("rdx") = -1;
	register long r10 __asm__("r10") = 0;
	__asm__ volatile(
		"movq 0(%[in]), %%xmm0\n movq 8(%[in]), %%xmm1\n movq 16(%[in]), %%xmm2\n movq 24(%[in]), %%xmm3\n"
		"movq 32(%[in]), %%xmm4\n movq 40(%[in]), %%xmm5\n movq 48(%[in]), %%xmm6\n movq 56(%[in]), %%xmm7\n"
		"movq 64(%[in]), %%xmm8\n movq 72(%[in]), %%xmm9\n movq 80(%[in]), %%xmm10\n movq 88(%[in]), %%xmm11\n"
		"movq 96(%[in]), %%xmm12\n movq 104(%[in]), %%xmm13\n movq 112(%[in]), %%xmm14\n movq 120(%[in]), %%xmm15\n"
		"movabs $0x0b0b0b0b0b0b0b0b, %%rbx\n movabs $0x1212121212121212, %%r12\n"
		"movabs $0x1313131313131313, %%r13\n movabs $0x1414141414141414, %%r14\n"
		"movabs $0x1515151515151515, %%r15\n"
		"mov $1000, %%eax\n syscall\n"
		"mov %%rbx, 0(%[g])\n mov %%r12, 8(%[g])\n mov %%r13, 16(%[g])\n mov %%r14, 24(%[g])\n mov %%r15, 32(%[g])\n"
		"movq %%xmm0, 0(%[out])\n movq %%xmm1, 8(%[out])\n movq %%xmm2, 16(%[out])\n movq %%xmm3, 24(%[out])\n"
		"movq %%xmm4, 32(%[out])\n movq %%xmm5, 40(%[out])\n movq %%xmm6, 48(%[out])\n movq %%xmm7, 56(%[out])\n"
		"movq %%xmm8, 64(%[out])\n movq %%xmm9, 72(%[out])\n movq %%xmm10, 80(%[out])\n movq %%xmm11, 88(%[out])\n"
		"movq %%xmm12, 96(%[out])\n movq %%xmm13, 104(%[out])\n movq %%xmm14, 112(%[out])\n movq %%xmm15, 120(%[out])\n"
		: "=&a"(ret)
		: [in] "r"(in), [out] "r"(out), [g] "r"(g_out), "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10)
		: "rcx", "r11", "rbx", "r12", "r13", "r14", "r15", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
		  "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	int ok = memcmp(in, out, sizeof in) == 0;
	const uint64_t want[5] = {0x0b0b0b0b0b0b0b0bULL, 0x1212121212121212ULL, 0x1313131313131313ULL,
				  0x1414141414141414ULL, 0x1515151515151515ULL};
	ok = ok && memcmp(g_out, want, sizeof want) == 0;
	*regs_ok = ok;
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts); /* glibc goes through the vDSO */
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s IMAGE MAPFILE LOGFILE\n", argv[0]);
		return 2;
	}
	unsigned char *big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (unsigned long off = 0; off < BIG; off += 2 * 4096)
		for (unsigned long i = 0; i < 4096; i++)
			big[off + i] = (unsigned char)((off / 4096) * 31 + i * 7 + 1);
	int mfd = open(argv[2], O_RDONLY);
	char *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
	if (mfd < 0 || map == MAP_FAILED) {
		perror("map file");
		return 2;
	}
	map[4096] = 'Z'; /* a private copy of page 2; page 1 still comes from the file */
	int log = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (log < 0 || write(log, "before\n", 7) != 7) {
		perror("log");
		return 2;
	}
	signal(SIGUSR1, on_usr1);
	signal(SIGTERM, SIG_IGN);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);

	/* An alternate signal stack, an armed interval timer and a pending (blocked) signal. */
	static char altbuf[65536];
	stack_t alt = {.ss_sp = altbuf, .ss_size = sizeof altbuf, .ss_flags = 0};
	struct itimerval itv = {.it_value = {1000, 0}};
	if (sigaltstack(&alt, NULL) != 0 || setitimer(ITIMER_REAL, &itv, NULL) != 0 || raise(SIGUSR2) != 0) {
		perror("altstack/itimer/pending");
		return 2;
	}

	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open image");
		return 2;
	}
	double frozen_at = now(CLOCK_REALTIME);
	int regs_ok = 0;
	long r = checkpoint_with_live_regs(fd, &regs_ok);
	int err = r < 0 ? errno : 0;
	close(fd);

	unsigned long sum = 0;
	for (unsigned long i = 0; i < BIG; i++)
		sum = sum * 31 + big[i];
	raise(SIGUSR1);
	raise(SIGTERM);
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	struct sigaction term;
	sigaction(SIGTERM, NULL, &term);
	stack_t alt_now;
	struct itimerval itv_now, virt_now;
	sigset_t pending;
	sigaltstack(NULL, &alt_now);
	getitimer(ITIMER_REAL, &itv_now);
	getitimer(ITIMER_VIRTUAL, &virt_now); /* never armed here: a thawer's must not leak in */
	sigpending(&pending);
	int alt_ok = alt_now.ss_sp == altbuf && alt_now.ss_size == sizeof altbuf && !(alt_now.ss_flags & SS_DISABLE);
	int itimer_ok = itv_now.it_value.tv_sec > 900 && itv_now.it_value.tv_sec <= 1000 &&
			!timerisset(&virt_now.it_value) && !timerisset(&virt_now.it_interval);
	int pending_ok = sigismember(&pending, SIGUSR2);
	double m0 = now(CLOCK_MONOTONIC), w0 = now(CLOCK_REALTIME);
	struct timespec nap = {0, 50 * 1000 * 1000};
	nanosleep(&nap, NULL);
	double dm = now(CLOCK_MONOTONIC) - m0;
	int clock_ok = w0 >= frozen_at && dm >= 0.045 && dm < 2.0;

	/* Process metadata: name, executable, argv (from the argv range), brk, the vDSO as the auxv says
	 * (glibc's copy and the kernel's /proc/self/auxv), and that brk still grows. */
	char comm[32] = "", exe[512] = "", cmdline[512] = "";
	int cfd = open("/proc/self/comm", O_RDONLY);
	if (cfd >= 0) {
		ssize_t n = read(cfd, comm, sizeof comm - 1);
		comm[n > 0 ? n - 1 : 0] = 0;
		close(cfd);
	}
	ssize_t en = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[en > 0 ? en : 0] = 0;
	cfd = open("/proc/self/cmdline", O_RDONLY);
	if (cfd >= 0) {
		ssize_t n = read(cfd, cmdline, sizeof cmdline - 1);
		for (ssize_t i = 0; i < n; i++)
			if (cmdline[i] == 0)
				cmdline[i] = ',';
		cmdline[n > 0 ? n : 0] = 0;
		close(cfd);
	}
	unsigned long procvdso = 0, av[2];
	cfd = open("/proc/self/auxv", O_RDONLY);
	while (cfd >= 0 && read(cfd, av, sizeof av) == sizeof av && av[0] != AT_NULL)
		if (av[0] == AT_SYSINFO_EHDR)
			procvdso = av[1];
	if (cfd >= 0)
		close(cfd);
	void *brk0 = sbrk(0);
	char *grown = sbrk(1 << 20);
	int brk_ok = grown != (void *)-1 && (grown[0] = 1, grown[(1 << 20) - 1] = 2, sbrk(-(1 << 20)) != (void *)-1);
	printf("comm=%s exe=%s cmdline=%s brk=%p vdso=%lx procvdso=%lx brkgrow=%d\n", comm, exe, cmdline, brk0,
	       getauxval(AT_SYSINFO_EHDR), procvdso, brk_ok);

	printf("r=%ld errno=%d sum=%lx map=%c%c regs=%d usr1=%d usr2blocked=%d termign=%d clock=%d alt=%d itimer=%d "
	       "pending=%d\n",
	       r, err, sum, map[0], map[4096], regs_ok, usr1, sigismember(&cur, SIGUSR2), term.sa_handler == SIG_IGN,
	       clock_ok, alt_ok, itimer_ok, pending_ok);
	fflush(stdout);
	dprintf(log, "after r=%ld\n", r);
	if (r == 0)
		kill(getpid(), SIGKILL);
	int ok = r == 1 && regs_ok && usr1 == 1 && sigismember(&cur, SIGUSR2) && term.sa_handler == SIG_IGN && clock_ok &&
		 alt_ok && itimer_ok && pending_ok;
	return ok ? 0 : 1;
}
