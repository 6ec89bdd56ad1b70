/* freeze_bench: reserves RESERVE MiB of anonymous memory, dirties the first DIRTY MiB of it with a
 * non-zero pattern, then freezes itself into IMAGE and reports how long the call took (the whole
 * process is paused for that long: it is single-threaded).
 *
 * usage: freeze_bench RESERVE_MIB DIRTY_MIB IMAGE [HOLD_SECONDS]
 * Prints "reserve_mib=%d dirty_mib=%d freeze=%ld errno=%d pause_us=%ld". With HOLD_SECONDS, prints
 * "holding" and sleeps that long after the freeze (so the host can look at the sandbox's memory). */
#include <errno.h>
#include <fcntl.h>
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

	int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open image");
		return 1;
	}
	long t0 = now_us();
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	long t1 = now_us();
	printf("reserve_mib=%s dirty_mib=%s freeze=%ld errno=%d pause_us=%ld\n", argv[1], argv[2], r, r < 0 ? errno : 0, t1 - t0);
	fflush(stdout);
	if (argc > 4) {
		printf("holding\n");
		fflush(stdout);
		sleep(atoi(argv[4]));
	}
	return r == 0 ? 0 : 1;
}
