// tree_guest: the workload of bench/tree.sh — a container of N processes holding TOTAL MiB.
//
// usage: tree_guest N TOTAL_MIB DIR
//
// The first process forks N-1 children; each process fills TOTAL/N MiB with non-zero bytes, then
// spins reading CLOCK_MONOTONIC and CLOCK_REALTIME; a gap between two reads is time it did not
// run (stopped, or not scheduled). Each process keeps the longest gap of every 100 ms (by when
// the gap ended) for the last 6.4 s, and every 20 ms rewrites what changed of DIR/gap.I
// (I = 0..N-1; fixed-width lines, so the file never shrinks):
//
//	"<realtime_ns>\n"                                 when it last published
//	"<gap_end_realtime_ns> <gap_us>\n" × HISTORY       longest gap of 100 ms slot s, at line 2 + s % HISTORY
//
// The first line says the process is running (bench/tree.sh waits for every file to show a time
// after a restore started); the script takes the longest gap overlapping a time window (the quiet
// second before a checkpoint: the noise floor; the checkpoint: the pause). The gaps are kept in
// the guest rather than reset by the script through a file: the sentry caches the rootfs's
// directory entries (the default exclusive file access), so a file the host creates later is
// never seen inside (the earlier reset file was not, and every "pause" was the longest gap
// since the process started). When every process has published once the first process creates
// DIR/ready.
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

static int64_t now_ns(clockid_t c) {
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define HISTORY 64
#define SLOT_NS (100 * 1000000LL)
#define HEAD_LEN 20 /* "%019lld\n" */
#define ENTRY_LEN 33 /* "%019lld %012lld\n" */

static void put(int fd, const char *b, int n, off_t off) {
	if (pwrite(fd, b, n, off) != n) {
		perror("pwrite");
		exit(1);
	}
}

static void spin(int index, size_t bytes, const char *dir, int ready_fd) {
	char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	for (size_t off = 0; off < bytes; off += 4096)
		memset(mem + off, (int)(off / 4096 % 251) + 1, 4096);

	char path[512];
	snprintf(path, sizeof path, "%s/gap.%d", dir, index);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	// The longest gap of each 100 ms slot (by its end) and when it ended; dirty slots are
	// written at the next publish.
	int64_t gap[HISTORY] = {0}, gap_end[HISTORY] = {0}, slot_of[HISTORY];
	int dirty[HISTORY];
	char line[64];
	for (int i = 0; i < HISTORY; i++) {
		slot_of[i] = -1;
		dirty[i] = 0;
		snprintf(line, sizeof line, "%019lld %012lld\n", 0LL, 0LL);
		put(fd, line, ENTRY_LEN, HEAD_LEN + i * ENTRY_LEN);
	}
	// Both clocks: a whole-sandbox save may hold the sentry's monotonic clock still while it
	// stops the tasks, so a gap is the larger of the two clocks' gaps. Publishing is not left
	// out: a freeze that catches the process inside a publish stops it there.
	int64_t last = now_ns(CLOCK_MONOTONIC), last_rt = now_ns(CLOCK_REALTIME);
	int64_t next_write = 0;
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
		int64_t g = t - last;
		if (rt - last_rt > g)
			g = rt - last_rt;
		if (t < last)
			g = rt - last_rt; // A restore: the monotonic clock is another sandbox's.
		last = t;
		last_rt = rt;
		if (g > 1000000) { // Gaps under 1 ms are the loop itself.
			int64_t slot = rt / SLOT_NS;
			int i = (int)(slot % HISTORY);
			if (slot_of[i] != slot) {
				slot_of[i] = slot;
				gap[i] = 0;
			}
			if (g > gap[i]) {
				gap[i] = g;
				gap_end[i] = rt;
				dirty[i] = 1;
			}
		}
		if (t < next_write)
			continue;
		next_write = t + 20 * 1000000;
		if (index == 0)
			waitpid(-1, NULL, WNOHANG); // The ready collector below.
		for (int i = 0; i < HISTORY; i++) {
			if (!dirty[i])
				continue;
			dirty[i] = 0;
			snprintf(line, sizeof line, "%019lld %012lld\n", (long long)gap_end[i], (long long)(gap[i] / 1000));
			put(fd, line, ENTRY_LEN, HEAD_LEN + i * ENTRY_LEN);
		}
		snprintf(line, sizeof line, "%019lld\n", (long long)now_ns(CLOCK_REALTIME));
		put(fd, line, HEAD_LEN, 0);
		if (!wrote) {
			wrote = 1;
			if (write(ready_fd, "r", 1) != 1)
				exit(1);
			close(ready_fd);
		}
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
