/* incr_guest: the incremental-checkpoint benchmark's guest. Fills SIZE MiB of anonymous memory
 * (every page non-zero), freezes itself into DIR/full.img, changes one byte in PERMILLE of every
 * thousand pages (spread evenly), then freezes twice: into DIR/incr.img against DIR/full.img
 * (CKPT_FREEZE_INCR) and into DIR/full2.img (a complete image of the same memory, for comparison).
 *
 * usage: incr_guest SIZE_MIB PERMILLE DIR
 * Prints "full_us=%ld incr_us=%ld full2_us=%ld changed_pages=%ld" (wall time of each
 * sys_checkpoint call) or "error=..." and exits 1. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../include/ckpt.h"

#define PAGE 4096

static long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/* freeze freezes into dir/name (against dir/parent if not NULL); returns the call's time in µs. */
static long freeze(const char *dir, const char *name, const char *parent)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	int pfd = -1;
	if (parent) {
		char pp[4096];
		snprintf(pp, sizeof pp, "%s/%s", dir, parent);
		pfd = open(pp, O_RDONLY);
	}
	if (fd < 0 || (parent && pfd < 0)) {
		printf("error=open errno=%d\n", errno);
		exit(1);
	}
	long t0 = now_us();
	long r = parent ? sys_checkpoint(CKPT_FREEZE_INCR, fd, -1, pfd) : sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	long t1 = now_us();
	if (r != 0) {
		printf("error=freeze r=%ld errno=%d\n", r, errno);
		exit(1);
	}
	close(fd);
	if (pfd >= 0)
		close(pfd);
	return t1 - t0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s SIZE_MIB PERMILLE DIR\n", argv[0]);
		return 2;
	}
	size_t pages = (size_t)atol(argv[1]) * 256;
	long permille = atol(argv[2]);
	unsigned char *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		printf("error=mmap errno=%d\n", errno);
		return 1;
	}
	for (size_t i = 0; i < pages * PAGE; i += 8)
		*(unsigned long *)(m + i) = i * 2654435761UL + 1;
	long full = freeze(argv[3], "full.img", NULL);
	long changed = 0;
	for (size_t p = 0; p < pages; p++)
		if ((long)(p % 1000) < permille) {
			m[p * PAGE + 17] ^= 0x5a;
			changed++;
		}
	long incr = freeze(argv[3], "incr.img", "full.img");
	long full2 = freeze(argv[3], "full2.img", NULL);
	printf("full_us=%ld incr_us=%ld full2_us=%ld changed_pages=%ld\n", full, incr, full2, changed);
	return 0;
}
