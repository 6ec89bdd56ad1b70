/* freeze_pipe: freezes itself into the write end of a pipe whose reader (a child) copies the
 * stream to OUT. The pipe holds far less than the image, so the freeze blocks until the reader
 * catches up, and holes are sent as zero bytes.
 *
 * usage: freeze_pipe OUT
 * Prints "freeze=<ret> errno=<n>" and "reader=<exit status>". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../include/ckpt.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s OUT\n", argv[0]);
		return 2;
	}
	/* 8 MiB of non-zero memory so the image is well over the pipe's capacity. */
	size_t n = 8 << 20;
	char *mem = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(mem, 0x77, n);

	int p[2];
	if (pipe(p) != 0) {
		perror("pipe");
		return 1;
	}
	pid_t reader = fork();
	if (reader == 0) {
		close(p[1]);
		int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (out < 0)
			_exit(1);
		char buf[65536];
		ssize_t got;
		while ((got = read(p[0], buf, sizeof buf)) > 0) {
			usleep(200); /* a slow reader: the writer must wait for it */
			if (write(out, buf, (size_t)got) != got)
				_exit(1);
		}
		_exit(got == 0 ? 0 : 1);
	}
	close(p[0]);
	long r = sys_checkpoint(CKPT_FREEZE, p[1], -1, 0);
	printf("freeze=%ld errno=%d\n", r, r < 0 ? errno : 0);
	close(p[1]);
	int status;
	waitpid(reader, &status, 0);
	printf("reader=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return r == 0 ? 0 : 1;
}
