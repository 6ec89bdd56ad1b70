/*
 * touch_free: touches MIB MiB of memory once and frees it, for bench/pause.sh PAGE_REPORTING=off.
 *
 * On a VM whose balloon reports free pages to the host (free page reporting), the host takes back
 * memory the guest kernel has kept free for a while, and the guest's next write into such a page
 * faults in the host: a page-cache write into it costs ~10x one into a page freed a moment before
 * (docs/notes-pause.md, "Free page reporting"). Once reporting is off, a page stays warm after its
 * first touch; this program touches most of the free memory so that every write the bench times
 * gets warm pages, whichever the guest kernel hands out. It prints how long the touch took, which
 * says how much of that memory the host had taken back.
 *
 * usage: touch_free MIB
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

int main(int argc, char **argv)
{
	long mib = argc == 2 ? atol(argv[1]) : 0;
	if (mib <= 0) {
		fprintf(stderr, "usage: touch_free MIB\n");
		return 2;
	}
	size_t size = (size_t)mib << 20;
	char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (size_t i = 0; i < size; i += 4096)
		m[i] = 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("touched %ld MiB in %.0f ms\n", mib, (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
	return 0;
}
