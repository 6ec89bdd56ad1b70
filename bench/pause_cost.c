/* pause_cost: what a copy-on-write snapshot costs. The program dirties SIZE_MIB MiB, sends itself
 * SIGCKPT (the image is written in the background from a snapshot), rewrites DIRTY_MIB MiB of that
 * memory at once, and prints the sandbox's memory use (/proc/meminfo: MemTotal - MemFree, which
 * gVisor computes from its memory file) before the signal, right after the rewrite (the write
 * still running: snapshot and copies both alive, unless the write was faster than the rewrite)
 * and once the image is in place (IMAGE exists; the snapshot is dropped by then).
 *
 * Run in a sandbox whose cwd holds IMAGE, the default ckpt-file %N.ckpt:
 *   cd DIR && runsc-ckpt do -cwd=DIR -force-overlay=false ./pause_cost 512 64 DIR/pause_cost.ckpt
 *
 * usage: pause_cost SIZE_MIB DIRTY_MIB IMAGE */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"

static long used_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long total = 0, avail = 0, v;
	while (f && fgets(line, sizeof line, f)) {
		if (sscanf(line, "MemTotal: %ld kB", &v) == 1)
			total = v;
		if (sscanf(line, "MemFree: %ld kB", &v) == 1)
			avail = v;
	}
	if (f)
		fclose(f);
	return total - avail;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	size_t size = (size_t)atol(argv[1]) << 20, dirty = (size_t)atol(argv[2]) << 20;
	unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	memset(m, 1, size);
	unlink(argv[3]);
	long before = used_kb();
	kill(getpid(), SIGCKPT);
	for (size_t i = 0; i < dirty; i += 4096)
		m[i] = 2;
	long during = used_kb();
	struct stat st;
	struct timespec nap = {0, 1000000};
	while (stat(argv[3], &st) != 0)
		nanosleep(&nap, NULL);
	long written = used_kb();
	printf("size_mib=%ld dirty_mib=%ld used_before_mib=%ld during_mib=%ld after_mib=%ld\n", atol(argv[1]),
	       atol(argv[2]), before >> 10, during >> 10, written >> 10);
	return 0;
}
