/*
 * first_touch: what one copy-on-write copy costs on this host, for bench/pause.sh.
 *
 * After a snapshot, a thread's first write into a 2 MiB-aligned chunk of its private memory makes
 * gVisor copy that chunk into newly allocated pages of the sentry's memory file (a memfd). What
 * that costs is mostly the host's: the first touch of fresh memfd pages through a mapping (one
 * page fault per 4 KiB page, which on a VM with shadow paging can cost tens of microseconds) and
 * the copy itself. This program prints, as medians over ROUNDS fresh 2 MiB chunks of a memfd:
 *
 *   fresh_ms   copying 2 MiB into fresh pages (what a copy-on-write copy pays)
 *   warm_ms    the same copy again into the same, now touched pages (the copy alone)
 *
 * usage: first_touch [ROUNDS]   (default 16)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (2L << 20)

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 16;
	if (rounds < 1 || rounds > 1024) {
		fprintf(stderr, "usage: first_touch [ROUNDS 1..1024]\n");
		return 2;
	}
	long size = (rounds + 1) * CHUNK;
	int fd = memfd_create("first_touch", 0);
	if (fd < 0 || ftruncate(fd, size) < 0) {
		perror("memfd");
		return 1;
	}
	char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(m, 0x5a, CHUNK); /* the source: touched, non-zero */
	double *fresh = calloc(rounds, sizeof(double)), *warm = calloc(rounds, sizeof(double));
	if (!fresh || !warm)
		return 1;
	for (int i = 0; i < rounds; i++) {
		char *dst = m + (i + 1) * CHUNK;
		double t = now_ms();
		memcpy(dst, m, CHUNK);
		fresh[i] = now_ms() - t;
		t = now_ms();
		memcpy(dst, m, CHUNK);
		warm[i] = now_ms() - t;
	}
	qsort(fresh, rounds, sizeof(double), cmp_double);
	qsort(warm, rounds, sizeof(double), cmp_double);
	printf("fresh_ms=%.2f warm_ms=%.2f\n", fresh[rounds / 2], warm[rounds / 2]);
	return 0;
}
