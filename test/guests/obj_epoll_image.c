/* obj_epoll_image: an epoll interest on the fd a process froze itself through.
 *
 * usage: obj_epoll_image IMAGE
 *
 * The process freezes into the write end of a pipe (fd 11; a child copies the pipe into IMAGE)
 * that its epoll instance (fd 12) watches for EPOLLOUT (data 0x99), besides the read end of
 * another pipe with a byte in it (fd 10, EPOLLIN, data 0x10). After a thaw the image fd is the
 * thawer's image file, which epoll refuses: that interest is left out (docs/notes-thaw.md, "epoll")
 * and the thaw goes on.
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it waits for the copy and kills
 * itself with SIGKILL. After a thaw it prints "kept=.. left_out=.. image=.." (1 = as expected)
 * and exits 0 if all are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	int p[2], s[2];
	if (pipe(p) != 0 || write(p[1], "x", 1) != 1 || pipe(s) != 0)
		return 2;
	at(p[0], 10);
	close(p[1]);
	pid_t child = fork();
	if (child == 0) {
		close(s[1]);
		int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		char buf[65536];
		ssize_t n;
		while ((n = read(s[0], buf, sizeof buf)) > 0)
			if (write(out, buf, n) != n)
				_exit(1);
		_exit(n == 0 && close(out) == 0 ? 0 : 1);
	}
	close(s[0]);
	at(s[1], 11);
	at(epoll_create1(0), 12);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x10};
	if (epoll_ctl(12, EPOLL_CTL_ADD, 10, &ev) != 0)
		return 2;
	ev.events = EPOLLOUT;
	ev.data.u64 = 0x99;
	if (epoll_ctl(12, EPOLL_CTL_ADD, 11, &ev) != 0)
		return 2;

	long r = sys_checkpoint(CKPT_FREEZE, 11, -1, 0);
	printf("r=%ld errno=%d\n", r, r < 0 ? errno : 0);
	fflush(stdout);
	if (r == 0) {
		int status;
		close(11);
		if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			return 3;
		kill(getpid(), SIGKILL);
	}

	struct epoll_event evs[4];
	int n = epoll_wait(12, evs, 4, 0), kept = 0, left_out = 1;
	for (int i = 0; i < n; i++) {
		kept |= evs[i].data.u64 == 0x10;
		left_out &= evs[i].data.u64 != 0x99;
	}
	struct stat st;
	int image = fstat(11, &st) == 0 && S_ISREG(st.st_mode);
	ev.events = EPOLLIN;
	left_out = left_out && epoll_ctl(12, EPOLL_CTL_DEL, 11, &ev) < 0 && errno == ENOENT;
	printf("kept=%d left_out=%d image=%d\n", kept, left_out, image);
	return kept && left_out && image ? 0 : 1;
}
