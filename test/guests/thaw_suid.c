/* thaw_suid: a thaw must never raise the caller's credentials (issue 13, item 10).
 *
 * usage: thaw_suid IMAGE
 *
 * Freezes itself into IMAGE (prints "r=0" and kills itself). The test then rewrites the image so
 * that it names a set-user-ID root binary as its executable and thaws it as an unprivileged user:
 * the program resumes with r=1 and /proc/self/exe is that binary. It then thaws IMAGE again from
 * there, which execs its current executable: that exec must not honour the set-id bit. It prints
 * "r=1 euid=N", then either "rethaw=-1 errno=E" (refused) or, if the second thaw went through,
 * "r=2 euid=N" from the re-thawed program. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "../../include/ckpt.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	if (r == 0) {
		printf("r=0\n");
		fflush(stdout);
		kill(getpid(), SIGKILL);
	}
	close(fd);
	printf("r=%ld euid=%d\n", r, (int)geteuid());
	fflush(stdout);
	if (r != 1)
		return 0;
	int img = open(argv[1], O_RDONLY);
	if (img < 0) {
		perror(argv[1]);
		return 2;
	}
	long r2 = sys_checkpoint(CKPT_THAW, img, -1, 2);
	printf("rethaw=%ld errno=%d\n", r2, r2 < 0 ? errno : 0);
	return 0;
}
