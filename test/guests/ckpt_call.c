/*
 * ckpt_call: calls sys_checkpoint once per argument and prints one line per call:
 *     case NAME ret=R errno=ENAME
 * Each argument is NAME,TYPE,FD,PID,RETVAL,PREP,ABI; every call runs in its own child process so
 * that PREP cannot leak into the next case.
 *
 *   TYPE, RETVAL  integers
 *   FD    integer, or: wo (a new file opened O_WRONLY), ro (O_RDONLY), rw (O_RDWR), path (O_PATH),
 *         closed (a number that was just closed)
 *   PID   integer, or: self (getpid()), parent (the ckpt_call process that forked the case),
 *         missing (a pid that does not exist), sibling (a process of the ckpt_call process's
 *         user that sleeps beside the cases, started only if a case names it)
 *   PREP  none | nodump (prctl PR_SET_DUMPABLE 0) | nocore (RLIMIT_CORE 0) |
 *         nobody (drop to uid/gid 65534 without capabilities)
 *   ABI   int (the ckpt.h wrapper: 32-bit ints) | zext (each int zero-extended to 64 bits, e.g. -1
 *         as 0xffffffff) | junk (garbage in the upper 32 bits of every argument)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

static int parse_fd(const char *s, const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "ckpt_call.%s.out", name);
	if (!strcmp(s, "wo") || !strcmp(s, "rw")) {
		int fd = open(path, (!strcmp(s, "wo") ? O_WRONLY : O_RDWR) | O_CREAT | O_TRUNC, 0600);
		return fd < 0 ? -100 : fd;
	}
	if (!strcmp(s, "ro") || !strcmp(s, "path")) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, "not an image\n", 13) != 13)
			return -100;
		close(fd);
		fd = open(path, !strcmp(s, "ro") ? O_RDONLY : O_PATH);
		return fd < 0 ? -100 : fd;
	}
	if (!strcmp(s, "closed")) {
		int fd = dup(1);
		close(fd);
		return fd;
	}
	return atoi(s);
}

/* sibling is the sleeping process "sibling" names, 0 until one is started. */
static pid_t sibling;

static pid_t parse_pid(const char *s, pid_t parent)
{
	if (!strcmp(s, "sibling"))
		return sibling;
	if (!strcmp(s, "self"))
		return getpid();
	if (!strcmp(s, "parent"))
		return parent;
	if (!strcmp(s, "missing"))
		return 3999999;
	return atoi(s);
}

static int prep(const char *s)
{
	if (!strcmp(s, "none"))
		return 0;
	if (!strcmp(s, "nodump"))
		return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (!strcmp(s, "nocore")) {
		struct rlimit rl = {0, 0};
		return setrlimit(RLIMIT_CORE, &rl);
	}
	if (!strcmp(s, "nobody")) {
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			return -1;
		/* A uid change makes the process non-dumpable, as on Linux; undo that so only the
		 * ptrace permission is in question. */
		return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	}
	errno = EINVAL;
	return -1;
}

static int run_case(char *spec, pid_t parent)
{
	char *f[7];
	int n = 0;
	for (char *tok = strtok(spec, ","); tok && n < 7; tok = strtok(NULL, ","))
		f[n++] = tok;
	if (n != 7) {
		fprintf(stderr, "bad case %s\n", spec);
		return 2;
	}
	const char *name = f[0];
	int type = atoi(f[1]), fd, retval = atoi(f[4]);
	pid_t pid = parse_pid(f[3], parent);
	if (prep(f[5]) != 0) {
		printf("case %s prep=%s failed: %s\n", name, f[5], strerror(errno));
		return 2;
	}
	fd = parse_fd(f[2], name);
	if (fd == -100) {
		printf("case %s fd=%s failed: %s\n", name, f[2], strerror(errno));
		return 2;
	}
	long r;
	errno = 0;
	if (!strcmp(f[6], "int")) {
		r = sys_checkpoint(type, fd, pid, retval);
	} else if (!strcmp(f[6], "zext")) {
		r = syscall(SYS_checkpoint, (unsigned long)(unsigned int)type, (unsigned long)(unsigned int)fd,
			    (unsigned long)(unsigned int)pid, (unsigned long)(unsigned int)retval);
	} else if (!strcmp(f[6], "junk")) {
		unsigned long hi = 0x5eed0000UL << 32;
		r = syscall(SYS_checkpoint, hi | (unsigned int)type, hi | (unsigned int)fd,
			    hi | (unsigned int)pid, hi | (unsigned int)retval);
	} else {
		fprintf(stderr, "bad abi %s\n", f[6]);
		return 2;
	}
	printf("case %s ret=%ld errno=%s\n", name, r, r == -1 ? errname(errno) : "OK");
	return 0;
}

int main(int argc, char **argv)
{
	pid_t parent = getpid();
	int bad = 0;
	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 1; i < argc && !sibling; i++) {
		if (strstr(argv[i], ",sibling,")) {
			sibling = fork_dying_with_parent(); /* exits on failure */
			if (sibling == 0) {
				for (;;)
					pause();
			}
		}
	}
	for (int i = 1; i < argc; i++) {
		pid_t c = fork();
		if (c < 0) {
			perror("fork");
			return 2;
		}
		if (c == 0)
			_exit(run_case(argv[i], parent));
		int st;
		if (waitpid(c, &st, 0) != c) {
			perror("waitpid");
			return 2;
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			printf("case %d child status 0x%x\n", i, st);
			bad = 1;
		}
	}
	if (sibling > 0) {
		kill(sibling, SIGKILL);
		waitpid(sibling, NULL, 0);
	}
	return bad;
}
