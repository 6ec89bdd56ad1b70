// tree_fsctx LOG: two processes sharing an fs context (working directory, root, umask) and an fd
// table that their parent does not share, for TestTreeSharedFSContextOCI. The parent (the
// container's init) forks a middle process, which clones two children with CLONE_FS|CLONE_FILES
// (one fs context and one fd table, the middle's) and exits; the parent reaps it, so the two are
// siblings, both children of the init now, sharing a context and a table with each other only. The
// parent prints "ready" and all wait for SIGUSR1.
// After the restore: on SIGUSR1 the first sibling changes its working directory to /proc and its
// umask to 027 and opens fd 102 ("fsa done"); on SIGUSR1 the second checks that it sees all three
// ("fsb ..."), and on
// SIGUSR1 the parent checks that its own working directory and umask did not change ("parent ...").
// Files: the parent then opens fsctx.data and clones a child with CLONE_FILES (one fd table), which
// dups it to fd 101; the parent prints "ready" once it sees fd 101. After the restore, on SIGUSR1
// the files child seeks that file to offset 4 and opens fd 100 ("filesc done"); the parent checks
// that it sees the offset (one open file description) and that it sees fd 100 (one fd table:
// the two are restored sharing it, pkg/sentry/ckpt/thaw_tree_files.go).
// A line ends in "ok" or says what was seen.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree_log.h"

static void forever(void) {
	for (;;)
		pause();
}

int main(int argc, char **argv) {
	tree_log_start(argc, argv, "tree_fsctx");
	char start[512];
	if (!getcwd(start, sizeof start))
		die("getcwd");
	umask(022);
	pid_t middle = fork();
	if (middle < 0)
		die("fork");
	if (middle == 0) {
		long a = syscall(SYS_clone, CLONE_FS | CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
		if (a < 0)
			die("clone");
		if (a == 0) {
			waitusr1();
			if (chdir("/proc") != 0)
				die("chdir");
			umask(027);
			if (dup2(fileno(logf_), 102) != 102)
				die("dup2");
			logline("fsa", "done", 1, "");
			forever();
		}
		long b = syscall(SYS_clone, CLONE_FS | CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
		if (b < 0)
			die("clone");
		if (b == 0) {
			waitusr1();
			char cwd[512] = "";
			if (!getcwd(cwd, sizeof cwd))
				strcpy(cwd, "(getcwd failed)");
			logline("fsb", "sees the sibling's chdir", strcmp(cwd, "/proc") == 0, cwd);
			mode_t m = umask(027);
			char seen[32];
			snprintf(seen, sizeof seen, "umask %03o", (unsigned)m);
			logline("fsb", "sees the sibling's umask", m == 027, seen);
			errno = 0;
			int r = fcntl(102, F_GETFD);
			snprintf(seen, sizeof seen, "fcntl %d errno %d", r, errno);
			logline("fsb", "sees the sibling's new fd (one fd table again)", r >= 0, seen);
			logline("fsb", "done", 1, "");
			forever();
		}
		_exit(0);
	}
	int st;
	if (waitpid(middle, &st, 0) != middle)
		die("waitpid");
	int data = open("fsctx.data", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (data < 0 || write(data, "0123456789", 10) != 10 || lseek(data, 0, SEEK_SET) != 0)
		die("fsctx.data");
	long fc = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
	if (fc < 0)
		die("clone");
	if (fc == 0) {
		if (dup2(data, 101) != 101)
			die("dup2");
		waitusr1();
		int n = open("/proc/self/status", O_RDONLY);
		if (lseek(data, 4, SEEK_SET) != 4 || n < 0 || dup2(n, 100) != 100)
			die("filesc");
		logline("filesc", "done", 1, "");
		forever();
	}
	while (fcntl(101, F_GETFD) < 0)
		usleep(1000);
	printf("ready\n");
	waitusr1();
	char cwd[512] = "";
	if (!getcwd(cwd, sizeof cwd))
		strcpy(cwd, "(getcwd failed)");
	logline("parent", "keeps its working directory", strcmp(cwd, start) == 0, cwd);
	mode_t m = umask(022);
	char seen[32];
	snprintf(seen, sizeof seen, "umask %03o", (unsigned)m);
	logline("parent", "keeps its umask", m == 022, seen);
	off_t off = lseek(data, 0, SEEK_CUR);
	snprintf(seen, sizeof seen, "offset %lld", (long long)off);
	logline("parent", "shares the files child's offset", off == 4, seen);
	errno = 0;
	int r = fcntl(100, F_GETFD);
	snprintf(seen, sizeof seen, "fcntl %d errno %d", r, errno);
	logline("parent", "sees the files child's new fd (one fd table again)", r >= 0, seen);
	logline("parent", "done", 1, "");
	forever();
}
