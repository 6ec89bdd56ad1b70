// tree_guest: the workload of bench/tree.sh — a container of N processes holding TOTAL MiB.
//
// usage: tree_guest N TOTAL_MIB DIR
//
// The first process forks N-1 children; each process fills TOTAL/N MiB with non-zero bytes, then
// spins reading CLOCK_MONOTONIC and CLOCK_REALTIME and keeps the longest gap between two reads (the longest time it
// was stopped). Every 20 ms each process rewrites DIR/gap.I (I = 0..N-1, one fixed-width line):
//
//	"<realtime_ns> <longest_gap_us> <reset_generation>\n"
//
// realtime_ns says the process is running (bench/tree.sh waits for every file to show a time
// after a restore started); the longest gap restarts from 0 whenever DIR/reset's mtime changes
// (the script touches it before a measurement, and reads the gaps after). When every process has
// written its first line the first process creates DIR/ready.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(clockid_t c) {
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t reset_mtime(const char *path) {
	struct stat st;
	if (stat(path, &st) != 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static void spin(int index, size_t bytes, const char *dir, int ready_fd) {
	char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	for (size_t off = 0; off < bytes; off += 4096)
		memset(mem + off, (int)(off / 4096 % 251) + 1, 4096);

	char path[512], reset[512];
	snprintf(path, sizeof path, "%s/gap.%d", dir, index);
	snprintf(reset, sizeof reset, "%s/reset", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	// Both clocks: a whole-sandbox save may hold the sentry's monotonic clock still while it
	// stops the tasks, so the longest stop is the larger of the two clocks' gaps.
	int64_t gen = reset_mtime(reset), last = now_ns(CLOCK_MONOTONIC), last_rt = now_ns(CLOCK_REALTIME);
	int64_t next_write = 0, longest = 0;
	int wrote = 0;
	for (;;) {
		int64_t t = now_ns(CLOCK_MONOTONIC), rt = now_ns(CLOCK_REALTIME);
		// Restored into a sandbox that booted more recently, CLOCK_MONOTONIC is smaller than
		// before (each sandbox has its own; docs/notes-thaw.md): publish at once instead of
		// waiting for it to catch up with next_write, or "restore ms" would count that wait.
		// `t < last` alone misses it when the freeze caught the process inside a publish: `last`
		// is then re-read from the new clock below and only next_write is left from the old
		// one, more than a period ahead (3 of 16 processes waited 5 s so, all of the 16-process
		// restore figure's excess over upstream, which keeps the clock).
		if (t < last || next_write - t > 20 * 1000000)
			next_write = 0;
		if (t - last > longest)
			longest = t - last;
		if (rt - last_rt > longest)
			longest = rt - last_rt;
		last = t;
		last_rt = rt;
		if (t < next_write)
			continue;
		next_write = t + 20 * 1000000;
		if (index == 0)
			waitpid(-1, NULL, WNOHANG); // The ready collector below.
		int64_t g = reset_mtime(reset);
		if (g != gen) {
			gen = g;
			longest = 0;
		}
		char line[80];
		int n = snprintf(line, sizeof line, "%019lld %012lld %019lld\n", (long long)now_ns(CLOCK_REALTIME),
				 (long long)(longest / 1000), (long long)gen);
		if (pwrite(fd, line, n, 0) != n) {
			perror("pwrite");
			exit(1);
		}
		if (!wrote) {
			wrote = 1;
			if (write(ready_fd, "r", 1) != 1)
				exit(1);
			close(ready_fd);
		}
		last = now_ns(CLOCK_MONOTONIC); // The bookkeeping above is not a stop.
		last_rt = now_ns(CLOCK_REALTIME);
	}
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: tree_guest N TOTAL_MIB DIR\n");
		return 2;
	}
	int n = atoi(argv[1]);
	long total = atol(argv[2]);
	const char *dir = argv[3];
	if (n < 1 || total < 1) {
		fprintf(stderr, "tree_guest: N and TOTAL_MIB must be positive\n");
		return 2;
	}
	size_t each = ((size_t)total << 20) / (size_t)n;
	int p[2];
	if (pipe(p) != 0) {
		perror("pipe");
		return 1;
	}
	for (int i = 1; i < n; i++) {
		pid_t c = fork();
		if (c < 0) {
			perror("fork");
			return 1;
		}
		if (c == 0) {
			close(p[0]);
			spin(i, each, dir, p[1]);
		}
	}
	if (fork() == 0) { // Collects the ready bytes, then leaves: the tree is the N spinners.
		close(p[1]);
		char b;
		for (int got = 0; got < n;) {
			if (read(p[0], &b, 1) != 1) {
				perror("read");
				_exit(1);
			}
			got++;
		}
		char ready[512];
		snprintf(ready, sizeof ready, "%s/ready", dir);
		close(open(ready, O_WRONLY | O_CREAT, 0644));
		_exit(0);
	}
	close(p[0]);
	spin(0, each, dir, p[1]);
	return 0;
}
