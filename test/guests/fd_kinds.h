/* fd_kinds.h: the fd table of one fd of every kind that freeze_kinds and thaw_kinds lay out
 * (include after guest.h, with _GNU_SOURCE defined). */
#ifndef RUNSC_CKPT_TEST_FD_KINDS_H
#define RUNSC_CKPT_TEST_FD_KINDS_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "guest.h"

/* fd_kinds lays out, at fixed numbers: 10 a pipe's read end, 11 its write end (O_NONBLOCK), 12 one
 * end of a socketpair, 13 an eventfd (count 3, flags efd_flags), 14 /dev/null O_RDWR, 15 dir
 * (O_DIRECTORY), 16 O_PATH|O_NOFOLLOW on dir/link, 17 an empty memfd, 18 dir/data O_RDWR at
 * offset 1234 with FD_CLOEXEC, 19 an epoll. It returns the socketpair's other end, left at the fd
 * socketpair gave it. The guest exits with status 2 if it cannot. */
static inline int fd_kinds(const char *dir, int efd_flags)
{
	char path[4096];
	int p[2], s[2];
	if (pipe(p) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0) {
		perror("pipe/socketpair");
		_exit(2);
	}
	at(p[0], 10);
	at(p[1], 11);
	fcntl(11, F_SETFL, O_NONBLOCK);
	at(s[0], 12);
	at(eventfd(3, efd_flags), 13);
	at(open("/dev/null", O_RDWR), 14);
	at(open(dir, O_RDONLY | O_DIRECTORY), 15);
	snprintf(path, sizeof path, "%s/link", dir);
	at(open(path, O_PATH | O_NOFOLLOW), 16);
	at(memfd_create("kinds", 0), 17);
	snprintf(path, sizeof path, "%s/data", dir);
	at(open(path, O_RDWR), 18);
	lseek(18, 1234, SEEK_SET);
	fcntl(18, F_SETFD, FD_CLOEXEC);
	at(epoll_create1(0), 19);
	return s[1];
}

#endif
