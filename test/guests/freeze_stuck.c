/* freeze_stuck: a freeze that blocks writing its image into a socket nobody reads.
 *
 * usage: freeze_stuck
 *
 * Touches 8 MiB, starts a sibling thread that sleeps, prints "ready <pid>", and freezes itself into
 * one end of a socketpair whose other end is never read: the write blocks once the socket buffer is
 * full. SIGINT is handled (counted). When sys_checkpoint returns it prints
 * "freeze=<ret> errno=<errno> sigint=<count>" and "alive", and exits 0. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../include/ckpt.h"

static volatile sig_atomic_t sigints;
static void on_int(int sig) { (void)sig; sigints++; }

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		sleep(1);
	return NULL;
}

int main(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		perror("socketpair");
		return 2;
	}
	char *big = malloc(8 << 20);
	if (big == NULL)
		return 2;
	for (int i = 0; i < (8 << 20); i += 4096)
		big[i] = (char)(i / 4096 + 1);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_int;
	sigaction(SIGINT, &sa, NULL);
	pthread_t th;
	pthread_create(&th, NULL, sleeper, NULL);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	long r = sys_checkpoint(CKPT_FREEZE, sv[0], -1, 0);
	int e = r < 0 ? errno : 0;
	printf("freeze=%ld errno=%d sigint=%d\nalive\n", r, e, (int)sigints);
	fflush(stdout);
	return 0;
}
