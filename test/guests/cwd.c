/* cwd: the working directory must survive a freeze and thaw.
 *
 * usage: cwd IMAGE DIR
 *
 * chdir()s into DIR, freezes itself into IMAGE (an absolute path) and then prints one line
 *   r=<sys_checkpoint result> errno=<errno> cwd=<getcwd()> note=<first line of ./note.txt, opened
 *   by a relative path, or "-" if that fails>
 * With r == 0 (the freeze itself) it then kills itself with SIGKILL, as if the process had been
 * killed after the freeze; a thaw (r == 1) exits 0. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../include/ckpt.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s IMAGE DIR\n", argv[0]);
		return 2;
	}
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror("open image");
		return 2;
	}
	if (chdir(argv[2]) != 0) {
		perror("chdir");
		return 2;
	}
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	int err = r < 0 ? errno : 0;
	char cwd[4096] = "-";
	if (getcwd(cwd, sizeof cwd) == NULL)
		snprintf(cwd, sizeof cwd, "getcwd-failed-%d", errno);
	char note[256] = "-";
	FILE *f = fopen("note.txt", "r");
	if (f != NULL) {
		if (fgets(note, sizeof note, f) == NULL)
			strcpy(note, "-");
		note[strcspn(note, "\n")] = 0;
		fclose(f);
	}
	printf("r=%ld errno=%d cwd=%s note=%s\n", r, err, cwd, note);
	fflush(stdout);
	if (r == 0)
		kill(getpid(), SIGKILL);
	return r == 1 ? 0 : 1;
}
