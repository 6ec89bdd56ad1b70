/* freeze_cow: while the main thread freezes the process into IMAGE, a worker thread keeps
 * rewriting a 16 MiB buffer: pass n stores n in the first 8 bytes of every page, in page order.
 * A consistent image holds the buffer as it was at one instant: pages 0..k-1 carry some n+1 and
 * pages k.. carry n. The worker goes on during the write of the image (copy-on-write snapshot), so
 * it completes passes during the freeze call.
 *
 * usage: freeze_cow IMAGE
 * Prints "buffer=<addr>", "freeze=<ret> errno=<n>", "passes_during_freeze=<n>". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest.h"

#define PAGES 4096
#define PAGE 4096

static unsigned char *buf;
static volatile unsigned long passes;
static volatile int go;

static void *worker(void *arg)
{
	(void)arg;
	while (!go)
		;
	for (unsigned long n = 1;; n++) {
		for (int p = 0; p < PAGES; p++)
			*(volatile unsigned long *)(buf + (size_t)p * PAGE) = n;
		passes = n;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	buf = mmap(NULL, (size_t)PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* Some bulk so the image takes a while to write: 256 MiB of non-zero memory. Right after the
	 * snapshot every store of the worker is a copy-on-write fault handled by the sentry (slow on
	 * ptrace: its first pass took longer than writing a 64 MiB image on a loaded machine). */
	fill_bulk(256);
	printf("buffer=%#lx\n", (unsigned long)buf);
	fflush(stdout);

	pthread_t th;
	pthread_create(&th, NULL, worker, NULL);
	go = 1;
	while (passes < 3)
		;
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open image");
		return 1;
	}
	unsigned long before = passes;
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	unsigned long after = passes;
	printf("freeze=%ld errno=%d\n", r, r < 0 ? errno : 0);
	printf("passes_during_freeze=%lu\n", after - before);
	return r == 0 ? 0 : 1;
}
