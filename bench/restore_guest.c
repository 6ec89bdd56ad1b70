/* restore_guest: the guest of the upstream restore part of bench/freeze.sh. It fills SIZE_MIB of
 * anonymous memory (every page non-zero), prints the wall clock of its start ("start_ns=") and
 * "filled", and then naps 1 ms at a time, reading the wall clock. Upstream `runsc checkpoint` saves the sandbox while it naps and `runsc restore` resumes
 * it; the first nap after which the wall clock jumped by more than GAP_MS (default 1000) marks the
 * restore. The guest then prints the wall clock of that first read after the restore ("first_ns="),
 * the time it takes to touch (read one word of) every page and check its value ("touch_ms=", "ok="),
 * and exits.
 *
 * usage: restore_guest SIZE_MIB [GAP_MS] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static long long now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s SIZE_MIB [GAP_MS]\n", argv[0]);
		return 2;
	}
	long long start = now_ns(CLOCK_REALTIME);
	size_t size = (size_t)atol(argv[1]) << 20;
	long long gap = (argc > 2 ? atoll(argv[2]) : 1000) * 1000000LL;
	unsigned char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t off = 0; off < size; off += 4096)
		*(unsigned long *)(mem + off) = off / 4096 + 1;
	printf("start_ns=%lld\nfilled\n", start);
	fflush(stdout);

	struct timespec nap = {0, 1000000};
	long long last = now_ns(CLOCK_REALTIME), first;
	for (;;) {
		nanosleep(&nap, NULL);
		first = now_ns(CLOCK_REALTIME);
		if (first - last > gap)
			break;
		last = first;
	}
	long long t0 = now_ns(CLOCK_MONOTONIC);
	unsigned long sum = 0, want = 0;
	for (size_t off = 0; off < size; off += 4096) {
		sum += *(unsigned long *)(mem + off);
		want += off / 4096 + 1;
	}
	long long t1 = now_ns(CLOCK_MONOTONIC);
	printf("first_ns=%lld gap_ms=%.1f touch_ms=%.1f ok=%d\n", first, (first - last) / 1e6, (t1 - t0) / 1e6,
	       sum == want);
	fflush(stdout);
	return sum == want ? 0 : 1;
}
