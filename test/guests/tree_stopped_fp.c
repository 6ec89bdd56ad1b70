/* tree_stopped_fp: a multi-threaded process whose threads keep live state in SSE registers, for
 * the freeze of a stopped process. Three spinner threads each add 1.0 to xmm8 in a loop of LOOP
 * iterations that makes no syscall and then check the sum against the loop's integer count; a
 * group stop (SIGSTOP) lands almost always inside such a loop, so the FP state each thread is
 * captured with is the one it was stopped with, and only for the thread that dequeued the signal
 * did gVisor pull it from the platform before the stop. The main thread appends a line "N ok R"
 * (N = 1, 2, 3, ...; R the fewest loops any spinner has finished) to LOG every 20 ms, with "bad"
 * for "ok" once a spinner saw a wrong sum.
 *
 * usage: tree_stopped_fp LOG */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "guest.h"

#define SPINNERS 3
#define LOOP 2000000UL

static volatile unsigned long rounds[SPINNERS];
static volatile int bad;
static const double one = 1.0;

static void *spin(void *arg)
{
	long i = (long)arg;
	for (;;) {
		double x;
		unsigned long n = LOOP;
		__asm__ volatile("pxor %%xmm8, %%xmm8\n\t"
				 "mov %[n], %%rcx\n"
				 "1:\n\t"
				 "addsd %[one], %%xmm8\n\t"
				 "dec %%rcx\n\t"
				 "jnz 1b\n\t"
				 "movsd %%xmm8, %[x]\n\t"
				 : [x] "=m"(x)
				 : [one] "m"(one), [n] "r"(n)
				 : "rcx", "xmm8", "cc", "memory");
		if (x != (double)LOOP)
			bad = 1;
		rounds[i]++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: tree_stopped_fp LOG\n");
		return 2;
	}
	FILE *log = fopen(argv[1], "a");
	if (log == NULL) {
		perror("fopen");
		return 1;
	}
	for (long i = 0; i < SPINNERS; i++) {
		pthread_t th;
		if (pthread_create(&th, NULL, spin, (void *)i) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	for (unsigned long n = 1;; n++) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
		unsigned long least = rounds[0];
		for (int i = 1; i < SPINNERS; i++)
			if (rounds[i] < least)
				least = rounds[i];
		fprintf(log, "%lu %s %lu\n", n, bad ? "bad" : "ok", least);
		fflush(log);
	}
}
