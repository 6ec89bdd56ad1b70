/* pause_guest: measures how long a checkpoint stops each thread of a running program.
 *
 * The program dirties SIZE_MIB MiB of anonymous memory (every page non-zero), then THREADS threads
 * (the main thread is thread 0) read CLOCK_MONOTONIC in a loop, sleeping 100 us between reads, and
 * record the longest gap between two reads: first over a quiet window of QUIET_MS (nothing happens:
 * the noise floor of the machine), then over a window of WINDOW_MS at whose start the checkpoint is
 * triggered. MODE says how:
 *   self    the main thread calls sys_checkpoint(CKPT_FREEZE, fd, -1) into IMAGE itself
 *   other   a child process calls sys_checkpoint(CKPT_FREEZE, fd, parent) into IMAGE (checkpt -c)
 *   signal  a child process sends SIGCKPT to the program and waits until IMAGE (the ckpt-file,
 *           pass its name) appears
 *   host    nothing: the program creates READY_FILE (IMAGE) at the window's start, and the host
 *           triggers the checkpoint (runsc-ckpt kill CID SIGCKPT, runsc checkpoint --leave-running)
 * Prints "thread=<i> quiet_us=<longest gap> stop_us=<longest gap>" per thread and, except for
 * host, "total_us=<checkpoint time>" (the call, or until the image appeared).
 *
 * usage: pause_guest SIZE_MIB THREADS QUIET_MS WINDOW_MS MODE IMAGE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"

#define MAXTHREADS 16

static long quiet_ms, window_ms;
static struct timespec t0;
static long quiet_max[MAXTHREADS], stop_max[MAXTHREADS];
static volatile int window_started;

static long us_since(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000000L + (b->tv_nsec - a->tv_nsec) / 1000;
}

static void spin(int id, void (*at_window)(void))
{
	struct timespec last, now, nap = {0, 100000};
	clock_gettime(CLOCK_MONOTONIC, &last);
	for (;;) {
		nanosleep(&nap, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		long gap = us_since(&last, &now), at = us_since(&t0, &now);
		if (at < quiet_ms * 1000) {
			if (gap > quiet_max[id])
				quiet_max[id] = gap;
		} else {
			if (window_started && gap > stop_max[id])
				stop_max[id] = gap;
			if (at_window && !window_started) {
				window_started = 1;
				clock_gettime(CLOCK_MONOTONIC, &last);
				at_window();
				clock_gettime(CLOCK_MONOTONIC, &now);
				gap = us_since(&last, &now);
				if (gap > stop_max[id])
					stop_max[id] = gap;
			}
			if (at > (quiet_ms + window_ms) * 1000)
				return;
		}
		last = now;
	}
}

static void *worker(void *arg)
{
	spin((int)(long)arg, NULL);
	return NULL;
}

static const char *mode, *image;
static int go_pipe[2];
static long total_us = -1;

static void trigger(void)
{
	struct timespec a, b;
	if (strcmp(mode, "self") == 0) {
		int fd = open(image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		clock_gettime(CLOCK_MONOTONIC, &a);
		long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (r != 0)
			fprintf(stderr, "self freeze failed: errno %d\n", errno);
		close(fd);
		total_us = us_since(&a, &b);
	} else if (strcmp(mode, "host") == 0) {
		close(open(image, O_WRONLY | O_CREAT | O_TRUNC, 0644));
	} else {
		if (write(go_pipe[1], "g", 1) != 1)
			perror("go");
	}
}

/* child waits for the go byte, then checkpoints its parent and reports the time on the pipe. */
static void child(pid_t parent, int report)
{
	char c;
	if (read(go_pipe[0], &c, 1) != 1)
		_exit(1);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (strcmp(mode, "other") == 0) {
		int fd = open(image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		long r = sys_checkpoint(CKPT_FREEZE, fd, parent, 0);
		if (r != 0)
			fprintf(stderr, "freeze of %d failed: errno %d\n", parent, errno);
	} else {
		unlink(image);
		kill(parent, SIGCKPT);
		struct stat st;
		struct timespec nap = {0, 1000000};
		while (stat(image, &st) != 0)
			nanosleep(&nap, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	long us = us_since(&a, &b);
	if (write(report, &us, sizeof us) != sizeof us)
		_exit(1);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: %s SIZE_MIB THREADS QUIET_MS WINDOW_MS MODE IMAGE\n", argv[0]);
		return 2;
	}
	size_t size = (size_t)atol(argv[1]) << 20;
	int threads = atoi(argv[2]);
	quiet_ms = atol(argv[3]);
	window_ms = atol(argv[4]);
	mode = argv[5];
	image = argv[6];
	if (threads < 1 || threads > MAXTHREADS)
		return 2;
	unsigned char *mem = mmap(NULL, size ? size : 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < size; i += 4096)
		memset(mem + i, (int)((i >> 12) | 1) & 0xff, 4096);
	int report[2];
	if (pipe(go_pipe) || pipe(report))
		return 1;
	pid_t kid = -1;
	if (strcmp(mode, "other") == 0 || strcmp(mode, "signal") == 0) {
		pid_t parent = getpid();
		kid = fork();
		if (kid == 0)
			child(parent, report[1]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_t th[MAXTHREADS];
	for (int i = 1; i < threads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(long)i);
	spin(0, trigger);
	for (int i = 1; i < threads; i++)
		pthread_join(th[i], NULL);
	if (kid > 0) {
		long us;
		if (read(report[0], &us, sizeof us) == sizeof us)
			total_us = us;
		waitpid(kid, NULL, 0);
	}
	for (int i = 0; i < threads; i++)
		printf("thread=%d quiet_us=%ld stop_us=%ld\n", i, quiet_max[i], stop_max[i]);
	if (total_us >= 0)
		printf("total_us=%ld\n", total_us);
	return 0;
}
