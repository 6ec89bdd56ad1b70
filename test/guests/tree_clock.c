// tree_clock LOG: appends its CLOCK_MONOTONIC (nanoseconds, one decimal line) to LOG every 100 ms,
// forever. Used by TestTreeRestoreClock: the first line after an ELF restore shows whether the
// restored sandbox continued the checkpoint's clock or started its own.
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

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
	for (;;) {
		struct timespec ts;
		char line[32];
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int n = snprintf(line, sizeof line, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
		if (write(fd, line, n) != n)
			return 1;
		struct timespec d = {0, 100 * 1000 * 1000};
		nanosleep(&d, NULL);
	}
}
