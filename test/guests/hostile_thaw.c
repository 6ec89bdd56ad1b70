/* hostile_thaw: the hostile-image catalogue's guest (test/hostile_test.go, docs/security.md).
 *
 * usage: hostile_thaw freeze IMAGE SECRET
 *          Freezes itself into IMAGE (mode 0644), prints "r=0" and kills itself. If it is ever
 *          thawed (the thaw's retval is its result), it prints what it runs as and whether it can
 *          open SECRET (a file only root may read):
 *            "thawed r=R uid=R/E/S gid=R/E/S groups=N capeff=HEX secret=ok|EACCES|... fd9=LINK"
 *          and exits 0.
 *        hostile_thaw thaw [-sync] IMAGE...
 *          Thaws each IMAGE in a child of its own (sys_checkpoint(CKPT_THAW, fd, -1, 7)), one
 *          after the other (an IMAGE whose name ends in ".stream" through a pipe). For each it prints "begin NAME" (NAME: IMAGE's base name), then the
 *          child prints "case NAME thaw=R errno=E uid=R/E/S gid=R/E/S alive" if the thaw failed
 *          (a thawed program prints its own line instead), then "case NAME status=S" (exit status,
 *          or 128+signal). With -sync it prints "ready" and waits for a file "go" in its working
 *          directory before the first thaw, and prints "done" and waits for "end" after the last,
 *          so that the test can measure the sentry around the thaws. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

/* creds prints " uid=R/E/S gid=R/E/S". */
static void creds(void)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	printf(" uid=%d/%d/%d gid=%d/%d/%d", (int)ru, (int)eu, (int)su, (int)rg, (int)eg, (int)sg);
}

/* capeff returns the CapEff line's value from /proc/self/status ("?" if unreadable). */
static const char *capeff(void)
{
	static char buf[64] = "?";
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "CapEff: %63s", buf) == 1)
			break;
	if (f)
		fclose(f);
	return buf;
}

static int do_freeze(const char *img, const char *secret)
{
	int fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(img);
		return 2;
	}
	fchmod(fd, 0644);
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	if (r == 0) {
		printf("r=0\n");
		fflush(stdout);
		kill(getpid(), SIGKILL);
	}
	if (r < 0) {
		printf("r=%ld errno=%s\n", r, errname(errno));
		return 1;
	}
	close(fd);
	printf("thawed r=%ld", r);
	creds();
	int s = open(secret, O_RDONLY);
	printf(" groups=%d capeff=%s secret=%s", getgroups(0, NULL), capeff(), s >= 0 ? "ok" : errname(errno));
	char fd9[4096];
	ssize_t n = readlink("/proc/self/fd/9", fd9, sizeof fd9 - 1);
	fd9[n > 0 ? n : 0] = 0;
	printf(" fd9=%s\n", n > 0 ? fd9 : "none");
	fflush(stdout);
	return 0;
}

/* waitfile waits (up to 5 minutes) for name to exist in the working directory (made by a process
 * of the same sandbox: the sentry may cache a failed lookup of a file made on the host). */
static void waitfile(const char *name)
{
	for (int i = 0; i < 3000 && access(name, F_OK) != 0; i++)
		usleep(100000);
}

/* through_pipe returns the read end of a pipe that a child of its own (dying with the caller) fills
 * with the contents of fd: a streamed image. */
static int through_pipe(int fd)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	if (fork_dying_with_parent() == 0) {
		close(p[0]);
		char buf[65536];
		ssize_t k;
		while ((k = read(fd, buf, sizeof buf)) > 0)
			if (write(p[1], buf, k) != k)
				break;
		_exit(0);
	}
	close(p[1]);
	close(fd);
	return p[0];
}

static int do_thaw(int argc, char **argv)
{
	int sync = argc > 0 && strcmp(argv[0], "-sync") == 0;
	if (sync) {
		argc--, argv++;
		printf("ready\n");
		fflush(stdout);
		waitfile("go");
	}
	for (int i = 0; i < argc; i++) {
		const char *name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
		printf("begin %s\n", name);
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			int fd = open(argv[i], O_RDONLY);
			size_t n = strlen(name);
			if (fd >= 0 && n > 7 && strcmp(name + n - 7, ".stream") == 0)
				fd = through_pipe(fd);
			if (fd < 0) {
				printf("case %s open errno=%s\n", name, errname(errno));
				fflush(stdout);
				_exit(3);
			}
			volatile long canary = 0x5eed;
			long r = sys_checkpoint(CKPT_THAW, fd, -1, 7);
			int e = errno;
			printf("case %s thaw=%ld errno=%s", name, r, errname(r < 0 ? e : 0));
			creds();
			printf(" %s\n", canary == 0x5eed ? "alive" : "corrupt");
			fflush(stdout);
			_exit(0);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		printf("case %s status=%d\n", name, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		fflush(stdout);
	}
	if (sync) {
		printf("done\n");
		fflush(stdout);
		waitfile("end");
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "freeze") == 0)
		return do_freeze(argv[2], argv[3]);
	if (argc >= 2 && strcmp(argv[1], "thaw") == 0)
		return do_thaw(argc - 2, argv + 2);
	fprintf(stderr, "usage: %s freeze IMAGE SECRET | thaw [-sync] IMAGE...\n", argv[0]);
	return 2;
}
