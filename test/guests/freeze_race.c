/* freeze_race: four threads of one process call sys_checkpoint(CKPT_FREEZE) at the same moment,
 * each into its own image DIR/race-<round>-<thread>.img, for several rounds. Every call must
 * succeed (one freeze of a process runs at a time; the others take part in it as stopped threads
 * and then run their own). Prints "round <r> ok" per round and "done".
 *
 * usage: freeze_race DIR ROUNDS */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../include/ckpt.h"

#define THREADS 4

static const char *dir;
static pthread_barrier_t barrier;
static int rounds;
static long results[THREADS];

static void *worker(void *arg)
{
	long i = (long)arg;
	for (int r = 0; r < rounds; r++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/race-%d-%ld.img", dir, r, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		pthread_barrier_wait(&barrier);
		long ret = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
		results[i] = ret < 0 ? -errno : ret;
		close(fd);
		pthread_barrier_wait(&barrier);
		if (i == 0) {
			int ok = 1;
			for (int j = 0; j < THREADS; j++)
				if (results[j] != 0) {
					printf("round %d thread %d: %ld\n", r, j, results[j]);
					ok = 0;
				}
			if (ok)
				printf("round %d ok\n", r);
			fflush(stdout);
		}
		pthread_barrier_wait(&barrier);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s DIR ROUNDS\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	rounds = atoi(argv[2]);
	pthread_barrier_init(&barrier, NULL, THREADS);
	pthread_t th[THREADS];
	for (long i = 1; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	worker((void *)0);
	for (long i = 1; i < THREADS; i++)
		pthread_join(th[i], NULL);
	printf("done\n");
	return 0;
}
