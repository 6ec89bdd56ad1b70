/* guest.h: what the test guests share (included as "guest.h"; BuildC puts include/ on the
 * include path for ckpt.h): setting up the fd table at fixed numbers, the freeze-and-die step of
 * the thaw tests, waiting for threads to make progress, bulk memory, reading a whole message, printing
 * one check a line and naming errnos the way the tests expect them. */
#ifndef RUNSC_CKPT_TEST_GUEST_H
#define RUNSC_CKPT_TEST_GUEST_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../include/ckpt.h"

/* at moves fd to number want (dup2; fd is closed if it was another number). A guest lays out its
 * fd table this way so that the test can name each fd; it exits with status 2 if it cannot. */
static inline void at(int fd, int want)
{
	if (fd < 0 || dup2(fd, want) != want) {
		fprintf(stderr, "setting up fd %d: %s\n", want, strerror(errno));
		_exit(2);
	}
	if (fd != want)
		close(fd);
}

/* freeze_fd_and_die freezes the calling process into the image file open at fd img and prints
 * "r=<result> errno=<n>". After the freeze itself (result 0) the process kills itself with
 * SIGKILL, as if it died after its checkpoint; in a thawed process the call returns 1. */
static inline long freeze_fd_and_die(int img)
{
	long r = sys_checkpoint(CKPT_FREEZE, img, -1, 0);
	printf("r=%ld errno=%d\n", r, r < 0 ? errno : 0);
	fflush(stdout);
	if (r == 0)
		kill(getpid(), SIGKILL);
	return r;
}

/* freeze_and_die is freeze_fd_and_die into a new image at path (mode 0600). */
static inline long freeze_and_die(const char *path)
{
	return freeze_fd_and_die(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600));
}

/* freeze_into freezes the calling process into a new image at path (mode 0600), prints
 * "freeze=<result> errno=<n>" and returns the result: the freeze tests' step, after which the
 * process runs on. It exits with status 1 if path cannot be created. */
static inline long freeze_into(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open image");
		exit(1);
	}
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	printf("freeze=%ld errno=%d\n", r, r < 0 ? errno : 0);
	return r;
}

/* fork_dying_with_parent forks a child that gets SIGKILL when the caller dies
 * (PR_SET_PDEATHSIG) and returns as fork does, but only once the child has set that up: a guest
 * that freezes and kills itself right after forking must not leave behind a child that had not
 * run yet, which would outlive it holding the guest's pipes open (a shell pipeline reading the
 * guest's stdout then waits for EOF for ever). Exits with status 2 if it cannot. */
static inline pid_t fork_dying_with_parent(void)
{
	int sync[2];
	pid_t parent = getpid();
	if (pipe(sync) != 0) {
		perror("pipe");
		_exit(2);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		_exit(2);
	}
	if (pid == 0) {
		close(sync[0]);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(2);
		if (write(sync[1], "k", 1) != 1)
			_exit(2);
		close(sync[1]);
		return 0;
	}
	close(sync[1]);
	char c;
	ssize_t n;
	while ((n = read(sync[0], &c, 1)) < 0 && errno == EINTR)
		;
	close(sync[0]);
	if (n != 1) {
		fprintf(stderr, "fork_dying_with_parent: the child died before it was set up\n");
		_exit(2);
	}
	return pid;
}

/* counters_advance polls every millisecond, for up to timeout_ms, until each of the n counters
 * (one per thread, only ever increased) has moved since the call, and reports whether they all
 * did. Polling with a generous bound rather than sampling once after a fixed sleep: on a loaded
 * machine a resumed thread may not run within milliseconds, and one that never resumed fails
 * the same either way. */
static inline int counters_advance(const volatile unsigned long *counters, int n, int timeout_ms)
{
	unsigned long before[n];
	for (int i = 0; i < n; i++)
		before[i] = counters[i];
	for (int t = 0; t < timeout_ms; t++) {
		usleep(1000);
		int all = 1;
		for (int i = 0; i < n; i++)
			if (counters[i] == before[i])
				all = 0;
		if (all)
			return 1;
	}
	return 0;
}

/* fill_bulk maps mib MiB of private anonymous memory and writes a non-zero byte every 64 bytes of
 * it: bulk that makes an image of the process take a while to write. Exits with status 1 if it
 * cannot. */
static inline void fill_bulk(size_t mib)
{
	size_t bulk = mib << 20;
	if (bulk == 0)
		return;
	unsigned char *b = mmap(NULL, bulk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED) {
		perror("mmap bulk");
		exit(1);
	}
	for (size_t i = 0; i < bulk; i += 64)
		b[i] = (unsigned char)(i >> 12) | 1;
}

/* read_full reads up to n bytes from fd into buf, going on after short reads and EINTR, and
 * returns how many it read: fewer than n at end of file or on an error. */
static inline int read_full(int fd, void *buf, int n)
{
	int got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

/* check_fails counts the checks that failed. */
static int check_fails;

/* check prints "name=1" or "name=0" (one line a test matches) and counts a failed check in
 * check_fails. */
static inline void check(const char *name, int ok)
{
	printf("%s=%d\n", name, ok ? 1 : 0);
	if (!ok)
		check_fails++;
}

/* errname is the symbolic name of errno e as the tests match it ("OK" for 0), or strerror's text
 * for an errno no test expects. */
static inline const char *errname(int e)
{
	switch (e) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EBADF: return "EBADF";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case ENOTDIR: return "ENOTDIR";
	case EINVAL: return "EINVAL";
	case EMFILE: return "EMFILE";
	case EFBIG: return "EFBIG";
	case EIO: return "EIO";
	case ENOSPC: return "ENOSPC";
	case EPIPE: return "EPIPE";
	case ERANGE: return "ERANGE";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ESTALE: return "ESTALE";
	default: return strerror(e);
	}
}

#endif
