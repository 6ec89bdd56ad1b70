/* leader_exit: a process whose main thread has exited (pthread_exit) while another thread runs
 * (issue 13 item 2: such a process could not be frozen by another process, ESRCH).
 *
 * usage: leader_exit DIR
 * Prints "ready" once the main thread is about to exit. The worker thread loops until the file
 * DIR/stop exists, then prints "worker done n=<iterations>" and exits the process with status 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *dir;

static void *worker(void *arg)
{
	(void)arg;
	char stop[4096];
	snprintf(stop, sizeof stop, "%s/stop", dir);
	for (long n = 0;; n++) {
		if (access(stop, F_OK) == 0) {
			printf("worker done n=%ld\n", n);
			fflush(stdout);
			exit(0);
		}
		usleep(10000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	pthread_t th;
	if (pthread_create(&th, NULL, worker, NULL) != 0)
		return 2;
	printf("ready\n");
	fflush(stdout);
	pthread_exit(NULL);
}
