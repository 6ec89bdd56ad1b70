/* pause_worker: a single-threaded program that keeps rewriting a 16 MiB buffer in passes while it
 * is checkpointed from outside (checkpt -c, SIGCKPT): pass n stores n in the first 8 bytes of every
 * page, in page order, and then writes n to the progress file (pwrite at offset 0). An image taken
 * at one instant holds n+1 in pages 0..k-1 and n in pages k.. . BULK_MIB MiB of non-zero memory
 * make the image take a while to write.
 *
 * usage: pause_worker PROGRESS_FILE BULK_MIB
 * Prints "buffer=<addr>" and "ready", then runs until killed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest.h"

#define PAGES 4096
#define PAGE 4096

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PROGRESS_FILE BULK_MIB\n", argv[0]);
		return 2;
	}
	int pfd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (pfd < 0) {
		perror("open progress");
		return 1;
	}
	unsigned char *buf = mmap(NULL, (size_t)PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	fill_bulk((size_t)atoi(argv[2]));
	printf("buffer=%#lx\nready\n", (unsigned long)buf);
	fflush(stdout);
	for (unsigned long n = 1;; n++) {
		for (int p = 0; p < PAGES; p++)
			*(volatile unsigned long *)(buf + (size_t)p * PAGE) = n;
		char line[32];
		int len = snprintf(line, sizeof line, "%lu\n", n);
		if (pwrite(pfd, line, (size_t)len, 0) != len) {
			perror("pwrite progress");
			return 1;
		}
	}
}
