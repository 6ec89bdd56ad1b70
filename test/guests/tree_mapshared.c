// tree_mapshared LOG: processes sharing a named file through MAP_SHARED mappings, for
// TestTreeMapSharedFileOCI. The parent (the container's init) creates /tmp/tms.dat (a tmpfs of the
// sandbox: archived with the checkpoint), maps it shared and closes the fd, writes "init" at 0,
// forks a child (which inherits the mapping) and a mapper (which opens and maps the file itself),
// prints "ready" and all wait for SIGUSR1.
// After the restore: on SIGUSR1 the child writes "child" at 100 through its mapping ("child
// done"); on SIGUSR1 the mapper checks that its mapping shows it ("mapper sees") and writes
// "mapper" at 200; on SIGUSR1 the parent checks that its mapping shows both and "init"
// ("parent sees") and that read(2) of the file does too ("parent file").
// A line ends in "ok" or says what was seen.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tree_log.h"

#define PG 4096
#define PATH "/tmp/tms.dat"

static char *mapfile(int create) {
	int fd = open(PATH, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0644);
	if (fd < 0 || (create && ftruncate(fd, 2 * PG) != 0))
		die("open");
	char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	close(fd);
	return m;
}

static void forever(void) {
	for (;;)
		pause();
}

int main(int argc, char **argv) {
	tree_log_start(argc, argv, "tree_mapshared");
	char *m = mapfile(1);
	strcpy(m, "init");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		waitusr1();
		strcpy(m + 100, "child");
		logline("child", "done", 1, "");
		forever();
	}
	pid_t mapper = fork();
	if (mapper < 0)
		die("fork");
	if (mapper == 0) {
		char *mm = mapfile(0);
		waitusr1();
		logline("mapper", "sees", strcmp(mm + 100, "child") == 0, mm + 100);
		strcpy(mm + 200, "mapper");
		forever();
	}
	printf("ready\n");
	waitusr1();
	logline("parent", "sees", strcmp(m, "init") == 0 && strcmp(m + 100, "child") == 0 && strcmp(m + 200, "mapper") == 0, m + 100);
	char buf[8] = {0};
	int fd = open(PATH, O_RDONLY);
	logline("parent", "file", fd >= 0 && pread(fd, buf, 7, 200) == 7 && strcmp(buf, "mapper") == 0, buf);
	forever();
}
