/* pause_async: the asynchronous checkpoint API (CKPT_FREEZE_ASYNC, CKPT_WAIT). In DIR:
 *   1. CKPT_FREEZE_ASYNC into async.img with counter 1, counter := 2 right after, CKPT_WAIT;
 *      a thaw of async.img resumes there with retval 1 and prints "restored counter=<n>";
 *   2. CKPT_WAIT with nothing pending, and with CKPT_WAIT_NOHANG;
 *   3. CKPT_FREEZE_ASYNC into a pipe whose reader is closed: returns 0, CKPT_WAIT reports EPIPE
 *      once, the next CKPT_WAIT returns 0;
 *   4. CKPT_FREEZE_ASYNC to the ckpt-file (fd -1), CKPT_WAIT, the file exists;
 *   5. CKPT_WAIT with an unknown flag: EINVAL.
 * BULK_MIB MiB of non-zero memory make each image take a while to write.
 *
 * usage: pause_async DIR BULK_MIB
 * Prints one "name=<ret> errno=<n>" line per call. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest.h"

static volatile unsigned long counter;

static void show(const char *name, long r)
{
	printf("%s=%ld errno=%d\n", name, r, r < 0 ? errno : 0);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s DIR BULK_MIB\n", argv[0]);
		return 2;
	}
	if (chdir(argv[1])) {
		perror("chdir");
		return 1;
	}
	fill_bulk((size_t)atoi(argv[2]));
	signal(SIGPIPE, SIG_IGN);

	int fd = open("async.img", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	counter = 1;
	long r = sys_checkpoint(CKPT_FREEZE_ASYNC, fd, -1, 0);
	if (r == 1) {
		printf("restored counter=%lu\n", counter);
		return 0;
	}
	counter = 2;
	show("async", r);
	show("wait", sys_checkpoint(CKPT_WAIT, -1, -1, 0));
	close(fd);

	show("wait_idle", sys_checkpoint(CKPT_WAIT, -1, -1, 0));
	show("nohang_idle", sys_checkpoint(CKPT_WAIT, -1, -1, CKPT_WAIT_NOHANG));

	int p[2];
	if (pipe(p)) {
		perror("pipe");
		return 1;
	}
	close(p[0]);
	show("async_pipe", sys_checkpoint(CKPT_FREEZE_ASYNC, p[1], -1, 0));
	show("wait_pipe", sys_checkpoint(CKPT_WAIT, -1, -1, 0));
	show("wait_again", sys_checkpoint(CKPT_WAIT, -1, -1, 0));
	close(p[1]);

	show("async_file", sys_checkpoint(CKPT_FREEZE_ASYNC, -1, -1, 0));
	show("wait_file", sys_checkpoint(CKPT_WAIT, -1, -1, 0));
	struct stat st;
	char name[64];
	FILE *comm = fopen("/proc/self/comm", "r");
	if (!comm || !fgets(name, sizeof name, comm)) {
		perror("comm");
		return 1;
	}
	name[strcspn(name, "\n")] = 0;
	char path[96];
	snprintf(path, sizeof path, "%s.ckpt", name);
	printf("ckpt_file=%s\n", stat(path, &st) == 0 && st.st_size > 0 ? "yes" : "no");

	show("wait_badflag", sys_checkpoint(CKPT_WAIT, -1, -1, 4));
	return 0;
}
