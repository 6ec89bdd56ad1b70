/* obj_inotify: an inotify instance with its watches through a freeze and a thaw
 * (docs/notes-thaw.md, "inotify").
 *
 * usage: obj_inotify IMAGE DIR
 *
 * Fd 10: inotify (IN_NONBLOCK) with the watches
 *   wd 1  DIR        IN_CREATE | IN_MOVE
 *   wd 2  DIR/a      removed again before the freeze (a gap)
 *   wd 3  DIR/f      IN_MODIFY
 *   wd 4  DIR/sub    IN_DELETE | IN_ONLYDIR
 *   wd 5  DIR/g      IN_ATTRIB (the test removes DIR/g before the thaw: not restored)
 * and four events queued, not read: DIR/before created, renamed to DIR/moved (IN_MOVED_FROM and
 * IN_MOVED_TO with one cookie), DIR/f modified, and the freeze's IMAGE created (it must be in DIR);
 * after the thaw they are read back in that order with their names and cookie (queue=1), then
 * nothing more.
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself with SIGKILL.
 * After a thaw it checks every watch by causing its event and prints
 * "inotify queue=1 create=1 modify=1 delete=1 gap=1 gone=1 same=1 next=1 flags=1" (1 = as
 * documented), exit 0 if all are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest.h"

static char dir[PATH_MAX / 2];

static void touch(const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	close(open(path, O_CREAT | O_WRONLY, 0600));
}

static int watch(const char *name, unsigned mask)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s%s%s", dir, *name ? "/" : "", name);
	return inotify_add_watch(10, path, mask);
}

static unsigned last_cookie;

/* next_event takes the next event (reading, waiting at most 20 s, when none is buffered: one read
 * can return several) and reports whether it is wd/mask/name. */
static int next_event(int wd, unsigned mask, const char *name)
{
	static char buf[4096] __attribute__((aligned(8)));
	static ssize_t have, at;
	if (at >= have) {
		struct pollfd pfd = {.fd = 10, .events = POLLIN};
		if (poll(&pfd, 1, 20000) != 1) {
			printf("event: none (want wd=%d mask=%#x name=%s)\n", wd, mask, name);
			return 0;
		}
		have = read(10, buf, sizeof buf);
		at = 0;
		if (have <= 0)
			return 0;
	}
	struct inotify_event *ev = (struct inotify_event *)(buf + at);
	at += sizeof *ev + ev->len;
	int ok = ev->wd == wd && (ev->mask & mask) == mask && strcmp(ev->len ? ev->name : "", name) == 0;
	last_cookie = ev->cookie;
	if (!ok)
		printf("event: wd=%d mask=%#x name=%s\n", ev->wd, ev->mask, ev->len ? ev->name : "");
	return ok;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE DIR\n", argv[0]);
		return 2;
	}
	snprintf(dir, sizeof dir, "%s", argv[2]);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/sub", dir);
	mkdir(path, 0700);
	touch("a");
	touch("f");
	touch("g");
	int fd = inotify_init1(IN_NONBLOCK);
	if (fd < 0 || dup2(fd, 10) != 10)
		return 2;
	close(fd);
	if (watch("", IN_CREATE | IN_MOVE) != 1 || watch("a", IN_ATTRIB) != 2 || inotify_rm_watch(10, 2) != 0 ||
	    watch("f", IN_MODIFY) != 3 || watch("sub", IN_DELETE | IN_ONLYDIR) != 4 || watch("g", IN_ATTRIB) != 5) {
		perror("watches");
		return 2;
	}
	if (!next_event(2, IN_IGNORED, "")) /* from the removal */
		return 2;
	touch("before");
	char to[PATH_MAX], f[PATH_MAX];
	snprintf(path, sizeof path, "%s/before", dir);
	snprintf(to, sizeof to, "%s/moved", dir);
	snprintf(f, sizeof f, "%s/f", dir);
	int wf = open(f, O_WRONLY);
	if (rename(path, to) != 0 || wf < 0 || write(wf, "y", 1) != 1) {
		perror("events");
		return 2;
	}
	close(wf);

	freeze_and_die(argv[1]);

	int queued = -1;
	int queue = ioctl(10, FIONREAD, &queued) == 0 && queued > 0 && next_event(1, IN_CREATE, "before") &&
		    next_event(1, IN_MOVED_FROM, "before");
	unsigned cookie = last_cookie;
	queue = queue && cookie != 0 && next_event(1, IN_MOVED_TO, "moved") && last_cookie == cookie &&
		next_event(3, IN_MODIFY, "") && next_event(1, IN_CREATE, strrchr(argv[1], '/') + 1) &&
		ioctl(10, FIONREAD, &queued) == 0 && queued == 0;
	touch("after");
	int create = next_event(1, IN_CREATE, "after");
	snprintf(path, sizeof path, "%s/f", dir);
	int w = open(path, O_WRONLY);
	int modify = w >= 0 && write(w, "x", 1) == 1 && next_event(3, IN_MODIFY, "");
	close(w);
	touch("sub/x");
	snprintf(path, sizeof path, "%s/sub/x", dir);
	int delete = unlink(path) == 0 && next_event(4, IN_DELETE, "x");
	int gap = inotify_rm_watch(10, 2) < 0 && errno == EINVAL;
	int gone = inotify_rm_watch(10, 5) < 0 && errno == EINVAL;
	int same = watch("", IN_CREATE) == 1;
	int next = watch("sub", IN_CREATE) == 4 && watch("moved", IN_ATTRIB) == 6;
	int flags = (fcntl(10, F_GETFL) & O_NONBLOCK) != 0;
	printf("inotify queue=%d create=%d modify=%d delete=%d gap=%d gone=%d same=%d next=%d flags=%d\n", queue, create,
	       modify, delete, gap, gone, same, next, flags);
	return queue && create && modify && delete && gap && gone && same && next && flags ? 0 : 1;
}
