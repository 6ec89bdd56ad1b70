/* freeze_threads: four threads; three workers keep running (two spin, one sleeps in nanosleep in a
 * loop) while the main thread freezes the process into IMAGE. After the freeze the workers must still
 * make progress. Prints "freeze=<ret> errno=<n>", then "progress=<0|1>" and exits 0 on success.
 *
 * usage: freeze_threads IMAGE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

static volatile unsigned long counters[3];
static volatile int started[3];

static void *spinner(void *arg)
{
	long i = (long)arg;
	started[i] = 1;
	for (;;)
		counters[i]++;
	return NULL;
}

static void *sleeper(void *arg)
{
	long i = (long)arg;
	started[i] = 1;
	for (;;) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
		counters[i]++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	pthread_t th[3];
	for (long i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, i == 2 ? sleeper : spinner, (void *)i);
	while (!started[0] || !started[1] || !started[2])
		usleep(1000);
	usleep(20000);

	long r = freeze_into(argv[1]);

	/* Every worker must advance (within 5 s). */
	int progress = counters_advance(counters, 3, 5000);
	printf("progress=%d\n", progress);
	fflush(stdout);
	return r == 0 && progress ? 0 : 1;
}
