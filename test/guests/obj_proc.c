/* obj_proc: fds that name processes through a freeze and a thaw (issue 8 item 8).
 *
 * usage: obj_proc IMAGE
 *
 * Fds (numbers fixed with dup2): 10 /proc/self/status, 11 /proc/<own pid> (a directory),
 * 12 a pidfd of the own process, 13 /proc/self/ns/net, 14 /proc/self/ns/uts,
 * 15 /proc/<a child's pid>/status (another process), 16 /proc/self/task/<own tid>/stat,
 * 17 /proc/self/exe with O_PATH|O_NOFOLLOW, 18 /proc/self/fd (a directory), 20 the image.
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself with SIGKILL.
 * After a thaw it checks that each fd names the thawed process (whatever its pid is now), never the
 * process that now has the old pid, and prints "status=.. dir=.. pidfd=.. netns=.. utsns=.. other=..
 * task=.. exe=.. fddir=.." (1 = as expected); exit 0 if all are. The other process's file is a
 * placeholder (a pipe read end whose peer is gone: EOF). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

/* readall reads what fd has from offset 0 into buf (NUL-terminated). */
static ssize_t readall(int fd, char *buf, size_t n)
{
	ssize_t got = pread(fd, buf, n - 1, 0);
	buf[got < 0 ? 0 : got] = 0;
	return got;
}

static volatile sig_atomic_t usr1;
static void on_usr1(int sig) { (void)sig; usr1++; }

/* same_ns reports whether fd is the namespace /proc/self/ns/name now names. */
static int same_ns(int fd, const char *name)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof path, "/proc/self/ns/%s", name);
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	char path[256], buf[4096];
	int cp[2];
	if (pipe(cp) != 0)
		return 2;
	pid_t child = fork();
	if (child == 0) { /* Lives until the parent is gone (its pipe's write end closes). */
		close(cp[1]);
		read(cp[0], buf, 1);
		_exit(0);
	}
	close(cp[0]);
	pid_t pid0 = getpid(), tid0 = gettid();
	at(open("/proc/self/status", O_RDONLY), 10);
	snprintf(path, sizeof path, "/proc/%d", pid0);
	at(open(path, O_RDONLY | O_DIRECTORY), 11);
	at(syscall(SYS_pidfd_open, pid0, 0), 12);
	at(open("/proc/self/ns/net", O_RDONLY), 13);
	at(open("/proc/self/ns/uts", O_RDONLY), 14);
	snprintf(path, sizeof path, "/proc/%d/status", child);
	at(open(path, O_RDONLY), 15);
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid0);
	at(open(path, O_RDONLY), 16);
	at(open("/proc/self/exe", O_PATH | O_NOFOLLOW), 17);
	fcntl(17, F_SETFD, FD_CLOEXEC);
	at(open("/proc/self/fd", O_RDONLY | O_DIRECTORY), 18);
	at(open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600), 20);

	freeze_fd_and_die(20);

	pid_t pid = getpid(), tid = gettid();
	char want[64];
	struct stat st;
	printf("pid_before=%d pid_after=%d\n", pid0, pid);

	/* /proc/self/status names the thawed process. */
	snprintf(want, sizeof want, "\nPid:\t%d\n", pid);
	int status = readall(10, buf, sizeof buf) > 0 && strstr(buf, want) != NULL;

	/* /proc/<old pid> is now the thawed process's directory. */
	int dir = 0, sfd = openat(11, "stat", O_RDONLY);
	if (sfd >= 0 && readall(sfd, buf, sizeof buf) > 0)
		dir = atoi(buf) == pid;
	dir = dir && fstat(11, &st) == 0 && S_ISDIR(st.st_mode);

	/* The pidfd signals the thawed process. */
	signal(SIGUSR1, on_usr1);
	int pidfd = syscall(SYS_pidfd_send_signal, 12, SIGUSR1, NULL, 0) == 0 && usr1 == 1;

	int netns = same_ns(13, "net"), utsns = same_ns(14, "uts");

	/* Another process's file is never reopened: a placeholder that reads EOF. */
	int other = fstat(15, &st) == 0 && S_ISFIFO(st.st_mode) && read(15, buf, sizeof buf) == 0;

	/* The freezing thread's task directory is the thawed thread's. */
	int task = readall(16, buf, sizeof buf) > 0 && atoi(buf) == tid;

	/* O_PATH|O_NOFOLLOW on /proc/self/exe: still the symlink, with FD_CLOEXEC. */
	char l1[4096], l2[4096];
	ssize_t n1 = readlinkat(17, "", l1, sizeof l1 - 1), n2 = readlink("/proc/self/exe", l2, sizeof l2 - 1);
	int exe = fstatat(17, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode) &&
		  (fcntl(17, F_GETFD) & FD_CLOEXEC) && n1 > 0 && n1 == n2 && memcmp(l1, l2, n1) == 0;

	/* /proc/self/fd lists the thawed process's fds (fd 20 among them). */
	int fddir = 0;
	DIR *d = fdopendir(dup(18));
	for (struct dirent *e; d && (e = readdir(d));)
		fddir = fddir || strcmp(e->d_name, "20") == 0;

	printf("status=%d dir=%d pidfd=%d netns=%d utsns=%d other=%d task=%d exe=%d fddir=%d\n", status, dir,
	       pidfd, netns, utsns, other, task, exe, fddir);
	return status && dir && pidfd && netns && utsns && other && task && exe && fddir ? 0 : 1;
}
