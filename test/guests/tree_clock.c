// tree_clock LOG: appends a line to LOG every 100 ms, forever:
//
//	MONO1 UPTIME MONO2 BTIME STARTTIME
//
// MONO1 and MONO2 are CLOCK_MONOTONIC (nanoseconds) read just before and just after UPTIME, the
// first field of /proc/uptime (seconds, two decimals); BTIME is /proc/stat's btime (seconds since
// the epoch) and STARTTIME the process's start time (field 22 of /proc/self/stat, clock ticks
// since boot). Used by TestTreeRestoreClock: the first line after an ELF restore shows whether
// the restored sandbox continued the checkpoint's clock and boot time or started its own.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// slurp reads path into buf (NUL-terminated) and returns buf, or NULL.
static char *slurp(const char *path, char *buf, size_t size) {
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, size - 1 - n);
		if (r <= 0)
			break;
		n += r;
	}
	close(fd);
	buf[n] = 0;
	return buf;
}

static long long mono(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: tree_clock LOG\n");
		return 2;
	}
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	static char buf[16384];
	for (;;) {
		char uptime[32] = "-";
		long long btime = -1, start = -1;
		long long m1 = mono();
		if (slurp("/proc/uptime", buf, sizeof buf))
			sscanf(buf, "%31s", uptime);
		long long m2 = mono();
		char *p;
		if (slurp("/proc/stat", buf, sizeof buf) && (p = strstr(buf, "\nbtime ")))
			sscanf(p + 7, "%lld", &btime);
		// Field 22; the fields after the command's closing parenthesis start at 3.
		if (slurp("/proc/self/stat", buf, sizeof buf) && (p = strrchr(buf, ')')))
			sscanf(p + 1, " %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %lld", &start);
		char line[160];
		int n = snprintf(line, sizeof line, "%lld %s %lld %lld %lld\n", m1, uptime, m2, btime, start);
		if (write(fd, line, n) != n)
			return 1;
		struct timespec d = {0, 100 * 1000 * 1000};
		nanosleep(&d, NULL);
	}
}
