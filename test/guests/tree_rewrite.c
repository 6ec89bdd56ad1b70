// tree_rewrite: the guest of TestTreePreSnapshotConsistent.
//
// usage: tree_rewrite N MIB
//
// N processes (the first forks N-1 children that die with it), each rewriting MIB MiB of private
// memory in passes without a pause: pass g writes g into the first and the last word of every
// page, in address order; before each pass the process checks that every page holds g-1. A
// checkpoint restores one instant's state only if the memory it brings back matches where the
// registers were in the pass: a page of an earlier instant (a throw-away snapshot's reaching the
// image) or of a later one makes the check at the start of the next pass fail.
//
// Every 10 ms each process rewrites prog.I (I = 0..N-1) in its working directory with one line:
//
//	"<realtime_ns> <pass> <bad>\n"
//
// bad is 0, or the first page found wrong + 1; after a bad check the process stops rewriting and
// only publishes. When every process has published once, the first prints "ready".
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define PAGE 4096
#define LAST (PAGE / sizeof(uint64_t) - 1)

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void publish(int fd, uint64_t pass, uint64_t bad)
{
	char line[80];
	int n = snprintf(line, sizeof line, "%019lld %012llu %012llu\n", (long long)now_ns(), (unsigned long long)pass,
			 (unsigned long long)bad);
	if (pwrite(fd, line, n, 0) != n) {
		perror("pwrite");
		_exit(1);
	}
}

static void rewrite(int index, size_t bytes, int ready_fd)
{
	size_t pages = bytes / PAGE;
	uint64_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		_exit(1);
	}
	char path[64];
	snprintf(path, sizeof path, "prog.%d", index);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		_exit(1);
	}
	// Pass 0 is the zero-filled mapping; pass 1 is the first write.
	uint64_t pass = 1, bad = 0;
	int64_t next = 0;
	for (;;) {
		for (size_t p = 0; p < pages && !bad; p++) {
			uint64_t *w = mem + p * (PAGE / sizeof(uint64_t));
			if (w[0] != pass - 1 || w[LAST] != pass - 1)
				bad = p + 1;
		}
		if (!bad) {
			for (size_t p = 0; p < pages; p++) {
				uint64_t *w = mem + p * (PAGE / sizeof(uint64_t));
				w[0] = pass;
				w[LAST] = pass;
			}
			pass++;
		}
		int64_t t = now_ns();
		if (t >= next) {
			next = t + 10 * 1000000;
			if (index == 0)
				waitpid(-1, NULL, WNOHANG); // The ready waiter below.
			publish(fd, pass, bad);
			if (ready_fd >= 0) {
				if (write(ready_fd, "r", 1) != 1)
					_exit(1);
				close(ready_fd);
				ready_fd = -1;
			}
		}
		if (bad)
			usleep(10000);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: tree_rewrite N MIB\n");
		return 2;
	}
	int n = atoi(argv[1]);
	size_t mib = (size_t)atol(argv[2]);
	if (n < 1 || mib < 1) {
		fprintf(stderr, "tree_rewrite: N and MIB must be positive\n");
		return 2;
	}
	int p[2];
	if (pipe(p) != 0) {
		perror("pipe");
		return 1;
	}
	for (int i = 1; i < n; i++) {
		if (fork_dying_with_parent() == 0) {
			close(p[0]);
			rewrite(i, mib << 20, p[1]);
		}
	}
	// The first process waits for every ready byte in a child of its own that then exits (it is
	// reaped below), so that all N rewrite without a pause.
	pid_t waiter = fork_dying_with_parent();
	if (waiter == 0) {
		close(p[1]);
		char b;
		for (int got = 0; got < n; got++)
			if (read(p[0], &b, 1) != 1)
				_exit(1);
		printf("ready\n");
		fflush(stdout);
		_exit(0);
	}
	close(p[0]);
	rewrite(0, mib << 20, p[1]);
	return 0;
}
