/* pause_twice: sends itself SIGCKPT twice in a row, changing a counter in between, and then waits
 * until both background writes are over: the ckpt-file IMAGE exists and no temporary file of it is
 * left in its directory. The image must then be the second one (counter 2): images of one process
 * are renamed into place in the order of their snapshots. BULK_MIB MiB of non-zero memory make each
 * image take a while to write.
 *
 * usage: pause_twice DIR IMAGE_NAME BULK_MIB   (run with DIR as the working directory's target)
 * Prints "counter=<addr>", "kill1=<r> kill2=<r>", then "done" or "stalled". */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest.h"

static volatile unsigned long counter;

/* pending reports whether DIR holds a temporary file of NAME (".NAME.tmp-..."), or lacks NAME. */
static int pending(const char *dir, const char *name)
{
	char prefix[256];
	snprintf(prefix, sizeof prefix, ".%s.tmp-", name);
	DIR *d = opendir(dir);
	if (!d)
		return 1;
	int tmp = 0, final = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			tmp = 1;
		if (strcmp(e->d_name, name) == 0)
			final = 1;
	}
	closedir(d);
	return tmp || !final;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s DIR IMAGE_NAME BULK_MIB\n", argv[0]);
		return 2;
	}
	if (chdir(argv[1])) {
		perror("chdir");
		return 1;
	}
	fill_bulk((size_t)atoi(argv[3]));
	printf("counter=%#lx\n", (unsigned long)&counter);
	counter = 1;
	int k1 = kill(getpid(), SIGCKPT);
	counter = 2;
	int k2 = kill(getpid(), SIGCKPT);
	counter = 3;
	printf("kill1=%d kill2=%d\n", k1, k2);
	fflush(stdout);
	/* Not a timed assertion: a bound so that a lost image fails the test instead of hanging it. */
	for (int i = 0; i < 6000; i++) {
		if (!pending(".", argv[2])) {
			printf("done\n");
			return 0;
		}
		usleep(10000);
	}
	printf("stalled\n");
	return 1;
}
