/* thaw_guest: the guest of bench/thaw.sh. It fills SIZE_MIB of anonymous memory (every page
 * non-zero, so every page is stored in the image), freezes itself into IMAGE and kills itself. A thaw
 * resumes it right after the freeze: it prints the wall clock of its first instruction after the
 * thaw ("first_ns="), the time it takes to touch (read one word of) every page ("touch_ms="), which
 * faults each page in from the image, and its resident set before and after that ("rss_*_mib=").
 *
 * usage: thaw_guest SIZE_MIB IMAGE */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../include/ckpt.h"

static long long now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* rss_mib returns the resident set size from /proc/self/statm, in MiB. */
static long rss_mib(void)
{
	long size = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * 4096 / (1 << 20);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SIZE_MIB IMAGE\n", argv[0]);
		return 2;
	}
	size_t size = (size_t)atol(argv[1]) << 20;
	unsigned char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t off = 0; off < size; off += 4096)
		*(unsigned long *)(mem + off) = off / 4096 + 1;
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	long long f0 = now_ns(CLOCK_REALTIME);
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	long long first = now_ns(CLOCK_REALTIME);
	if (r == 0) {
		fsync(fd);
		printf("frozen freeze_ms=%.1f\n", (first - f0) / 1e6);
		fflush(stdout);
		kill(getpid(), SIGKILL);
	}
	long rss0 = rss_mib();
	long long t0 = now_ns(CLOCK_MONOTONIC);
	unsigned long sum = 0, want = 0;
	for (size_t off = 0; off < size; off += 4096) {
		sum += *(unsigned long *)(mem + off);
		want += off / 4096 + 1;
	}
	long long t1 = now_ns(CLOCK_MONOTONIC);
	printf("r=%ld first_ns=%lld touch_ms=%.1f rss_before_mib=%ld rss_after_mib=%ld ok=%d\n", r, first,
	       (t1 - t0) / 1e6, rss0, rss_mib(), sum == want);
	return sum == want && r == 1 ? 0 : 1;
}
