/* freeze_basic: a static guest that fills 64 MiB with a pattern, keeps a log file open and a private
 * file mapping, then freezes itself into an image.
 *
 * usage: freeze_basic IMAGE MAPFILE LOGFILE
 * IMAGE "-" means fd == -1 and pid == -1 (the sandbox's ckpt-file name).
 * Prints "freeze=<ret> errno=<n> global=<value>" and then "alive". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../include/ckpt.h"

#define BIG (64UL << 20)

/* A global gdb must be able to read from the image. */
volatile long freeze_global = 0x1234abcd5678L;

static unsigned char *big;

__attribute__((noinline)) static long do_freeze(int fd)
{
	return sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s IMAGE MAPFILE LOGFILE\n", argv[0]);
		return 2;
	}
	big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* Touch the first 64 KiB of every 256 KiB with a pattern: the untouched three quarters must
	 * not be stored (the codec leaves zero runs of 64 KiB and more as holes). */
	for (unsigned long off = 0; off < BIG; off += 256 << 10)
		memset(big + off, (int)(off / 4096 % 251) + 1, 64 << 10);

	int mfd = open(argv[2], O_RDONLY);
	if (mfd < 0) {
		perror("open mapfile");
		return 1;
	}
	char *map = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, mfd, 0);
	if (map == MAP_FAILED) {
		perror("mmap file");
		return 1;
	}
	int log = open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (log < 0) {
		perror("open log");
		return 1;
	}
	dprintf(log, "before freeze\n");

	int fd = -1;
	if (strcmp(argv[1], "-") != 0) {
		fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0) {
			perror("open image");
			return 1;
		}
	}
	long r = do_freeze(fd);
	int e = r < 0 ? errno : 0;
	printf("freeze=%ld errno=%d global=%#lx map0=%c\n", r, e, freeze_global, map[0]);
	dprintf(log, "after freeze\n");
	printf("alive\n");
	return r == 0 ? 0 : 1;
}
