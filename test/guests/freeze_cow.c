/* freeze_cow: while the main thread freezes the process into IMAGE, a worker thread keeps
 * rewriting a 16 MiB buffer: pass n stores n in the first 8 bytes of every page, in page order.
 * A consistent image holds the buffer as it was at one instant: pages 0..k-1 carry some n+1 and
 * pages k.. carry n. The worker goes on during the write of the image (copy-on-write snapshot), so
 * it completes passes during the freeze call. That is made certain rather than left to timing (the
 * write of 256 MiB can finish before a loaded host schedules the worker): the image goes through a
 * pipe whose reader, another thread, copies it into IMAGE and, after the first chunk, waits until
 * the worker has completed two more passes. A freeze that stopped the other threads while writing
 * would never complete.
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
static volatile unsigned long before;
static int pipefd[2], outfd;

/* reader copies the image from the pipe into IMAGE; after the first chunk it waits until the
 * worker has completed two passes since the freeze began, holding the freeze's write back. */
static void *reader(void *arg)
{
	(void)arg;
	static char chunk[65536];
	int gated = 0;
	ssize_t n;
	while ((n = read(pipefd[0], chunk, sizeof chunk)) > 0) {
		if (write(outfd, chunk, (size_t)n) != n) {
			perror("write image");
			exit(1);
		}
		if (!gated) {
			while (passes < before + 2)
				;
			gated = 1;
		}
	}
	return NULL;
}

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
	outfd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (outfd < 0 || pipe(pipefd) < 0) {
		perror("open image or pipe");
		return 1;
	}
	before = passes;
	pthread_t rd;
	pthread_create(&rd, NULL, reader, NULL);
	long r = sys_checkpoint(CKPT_FREEZE, pipefd[1], -1, 0);
	int e = errno;
	unsigned long after = passes;
	close(pipefd[1]);
	pthread_join(rd, NULL);
	close(outfd);
	errno = e;
	printf("freeze=%ld errno=%d\n", r, r < 0 ? errno : 0);
	printf("passes_during_freeze=%lu\n", after - before);
	return r == 0 ? 0 : 1;
}
