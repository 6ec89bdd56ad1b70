/* image_guard: does a running thawed program keep its memory when its image file changes?
 *
 * usage: image_guard IMAGE GOFILE
 *
 * Fills 16 MiB with a pattern and freezes itself into IMAGE; the freeze prints "r=0" and kills
 * itself with SIGKILL. A thaw (r=1) prints "thawed", then waits (polling) until GOFILE exists --
 * meanwhile the test rewrites or truncates IMAGE -- and only then reads its memory back: it prints
 * "pattern=ok" or "pattern=bad <first bad page>" and exits 0. Pages not yet touched after a lazy
 * thaw come from the image file on first touch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "../../include/ckpt.h"

#define BIG (16UL << 20)

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE GOFILE\n", argv[0]);
		return 2;
	}
	unsigned char *big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (unsigned long off = 0; off < BIG; off += 4096)
		memset(big + off, (int)(off / 4096 % 251) + 1, 4096);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open image");
		return 1;
	}
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	printf("r=%ld\n", r);
	fflush(stdout);
	if (r == 0) {
		close(fd);
		kill(getpid(), SIGKILL);
	}
	if (r != 1)
		return 1;
	printf("thawed\n");
	fflush(stdout);
	while (access(argv[2], F_OK) != 0)
		usleep(10000);
	for (unsigned long off = 0; off < BIG; off += 4096) {
		for (unsigned long i = 0; i < 4096; i++) {
			if (big[off + i] != (unsigned char)(off / 4096 % 251 + 1)) {
				printf("pattern=bad %lu\n", off / 4096);
				return 0;
			}
		}
	}
	printf("pattern=ok\n");
	return 0;
}
