/* freeze_bench: reserves RESERVE MiB of anonymous memory, dirties the first DIRTY MiB of it with a
 * non-zero pattern, then freezes itself into IMAGE and reports how long the call took.
 *
 * usage: freeze_bench RESERVE_MIB DIRTY_MIB IMAGE [HOLD_SECONDS [WORKER]]
 * Prints "reserve_mib=%d dirty_mib=%d freeze=%ld errno=%d pause_us=%ld". With HOLD_SECONDS > 0,
 * prints "holding" and sleeps that long after the freeze (so the host can look at the sandbox's
 * memory). With WORKER = 1 a second thread spins reading the clock during the freeze and the
 * longest gap it saw is printed as "worker_stall_us=%ld": how long the freeze stopped the other
 * threads of the process. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../include/ckpt.h"

static long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static volatile long worker_max_gap, worker_reset;
static volatile int worker_started;

/* worker records the longest time between two of its loop iterations. */
static void *worker(void *arg)
{
	(void)arg;
	long last = now_us();
	worker_started = 1;
	for (;;) {
		long now = now_us();
		if (worker_reset) {
			worker_reset = 0;
			worker_max_gap = 0;
		} else if (now - last > worker_max_gap) {
			worker_max_gap = now - last;
		}
		last = now;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s RESERVE_MIB DIRTY_MIB IMAGE [HOLD_SECONDS]\n", argv[0]);
		return 2;
	}
	size_t reserve = (size_t)atol(argv[1]) << 20, dirty = (size_t)atol(argv[2]) << 20;
	if (dirty > reserve)
		dirty = reserve;
	unsigned char *mem = mmap(NULL, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t off = 0; off < dirty; off += 4096)
		memset(mem + off, (int)(off / 4096 % 255) + 1, 4096);

	int with_worker = argc > 5 && atoi(argv[5]) == 1;
	if (with_worker) {
		pthread_t th;
		pthread_create(&th, NULL, worker, NULL);
		while (!worker_started)
			usleep(1000);
		usleep(10000);
		worker_reset = 1;
		while (worker_reset)
			;
	}

	int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open image");
		return 1;
	}
	long t0 = now_us();
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	long t1 = now_us();
	printf("reserve_mib=%s dirty_mib=%s freeze=%ld errno=%d pause_us=%ld\n", argv[1], argv[2], r, r < 0 ? errno : 0, t1 - t0);
	if (with_worker)
		printf("worker_stall_us=%ld\n", worker_max_gap);
	fflush(stdout);
	if (argc > 4 && atoi(argv[4]) > 0) {
		printf("holding\n");
		fflush(stdout);
		sleep(atoi(argv[4]));
	}
	return r == 0 ? 0 : 1;
}
