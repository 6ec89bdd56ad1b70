/* obj_inotify: an inotify instance through a freeze and a thaw.
 *
 * usage: obj_inotify IMAGE DIR
 *
 * Fd 10: inotify (IN_NONBLOCK) watching DIR for IN_CREATE (wd 1), with one event queued (the
 * guest created DIR/before). Watches and queued events are not in the image (docs/notes-thaw.md,
 * "inotify"): after a thaw the fd is a fresh inotify instance with its flags.
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself with SIGKILL.
 * After a thaw it prints "inotify=.. fresh=.. works=.. flags=.." (1 = as documented) and exits 0
 * if all are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "guest.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE DIR\n", argv[0]);
		return 2;
	}
	char path[PATH_MAX], buf[4096];
	int fd = inotify_init1(IN_NONBLOCK);
	if (fd < 0 || dup2(fd, 10) != 10 || inotify_add_watch(10, argv[2], IN_CREATE) != 1)
		return 2;
	close(fd);
	snprintf(path, sizeof path, "%s/before", argv[2]);
	close(open(path, O_CREAT | O_WRONLY, 0600));

	freeze_and_die(argv[1]);

	/* A working inotify instance (its own ioctl answers), without the old watch or event. */
	int queued = -1;
	int inotify = ioctl(10, FIONREAD, &queued) == 0;
	int fresh = queued == 0 && read(10, buf, sizeof buf) < 0 && errno == EAGAIN && inotify_rm_watch(10, 1) < 0 && errno == EINVAL;
	int wd = inotify_add_watch(10, argv[2], IN_CREATE);
	snprintf(path, sizeof path, "%s/after", argv[2]);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	struct inotify_event *ev = (struct inotify_event *)buf;
	int works = wd >= 1 && read(10, buf, sizeof buf) > 0 && ev->wd == wd && (ev->mask & IN_CREATE) && strcmp(ev->name, "after") == 0;
	int flags = (fcntl(10, F_GETFL) & O_NONBLOCK) != 0;
	printf("inotify=%d fresh=%d works=%d flags=%d\n", inotify, fresh, works, flags);
	return inotify && fresh && works && flags ? 0 : 1;
}
