/* thaw_kinds: fds of every kind through a freeze and a thaw.
 *
 * usage: thaw_kinds IMAGE DIR      (DIR holds a file "data" of at least 8 KiB and a symlink "link")
 *
 * Fds (numbers fixed with dup2): 10 pipe read end (with unread data), 11 pipe write end
 * (O_NONBLOCK), 12 one end of a socketpair (the other end stays open at the fd socketpair gave
 * it, with a byte queued for 12), 13 eventfd (count 3, semaphore mode), 14 /dev/null O_RDWR, 15 DIR (O_DIRECTORY),
 * 16 O_PATH|O_NOFOLLOW on DIR/link, 17 memfd, 18 DIR/data O_RDWR at offset 1234 with FD_CLOEXEC,
 * 19 epoll, 20 the image itself (still open while freezing).
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself with SIGKILL.
 * After a thaw it checks each fd as docs/notes-thaw.md says it comes back (reopened, or a
 * placeholder: a pipe end whose peer is gone; the pipe 10/11 rebuilt connected with its unread
 * byte; the socketpair rebuilt connected with its byte; the eventfd rebuilt with its count; the
 * memfd with its contents and offset; the epoll with its interest list, empty here) and prints
 * "pipe_r=.. pipe_w=.. sock=.. eventfd=.. null=.. dir=.. opath=.. memfd=.. file=.. epoll=.. image=.."
 * (1 = as expected; image=file or image=pipe, see below); exit 0 if all are as expected. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_kinds.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE DIR\n", argv[0]);
		return 2;
	}
	int peer = fd_kinds(argv[2], EFD_SEMAPHORE);
	if (write(11, "x", 1) != 1 || write(peer, "k", 1) != 1 || write(17, "memfd", 5) != 5)
		return 2;
	at(open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600), 20);

	freeze_fd_and_die(20);

	signal(SIGPIPE, SIG_IGN);
	char buf[16];
	struct stat st;
	/* The pipe keeps its unread "x", and its ends are still connected. */
	int pipe_r = read(10, buf, sizeof buf) == 1 && buf[0] == 'x';
	int pipe_w = write(11, "y", 1) == 1 && (fcntl(11, F_GETFL) & O_NONBLOCK) && read(10, buf, sizeof buf) == 1 &&
		     buf[0] == 'y';
	/* Both ends of the socketpair are in the image: rebuilt connected, the queued byte first. */
	int type = 0;
	socklen_t tl = sizeof type;
	int sock = getsockopt(12, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM &&
		   read(12, buf, sizeof buf) == 1 && buf[0] == 'k' && write(peer, "pq", 2) == 2 &&
		   read(12, buf, sizeof buf) == 2 && write(12, "r", 1) == 1 && read(peer, buf, 1) == 1 && buf[0] == 'r';
	/* The eventfd keeps its count (3) and semaphore mode: three reads of 1, then EAGAIN. */
	uint64_t got = 0;
	int efd = fcntl(13, F_SETFL, O_NONBLOCK) == 0; /* a lost count must fail, not block */
	for (int i = 0; i < 3; i++)
		efd = efd && read(13, &got, 8) == 8 && got == 1;
	efd = efd && read(13, &got, 8) < 0 && errno == EAGAIN;
	int null = write(14, "z", 1) == 1 && read(14, buf, 1) == 0 && fstat(14, &st) == 0 && S_ISCHR(st.st_mode);
	int dfd = openat(15, "data", O_RDONLY);
	int dir = fstat(15, &st) == 0 && S_ISDIR(st.st_mode) && dfd >= 0;
	int opath = fstatat(16, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
	/* The memfd is rebuilt with its contents and its offset (after the 5 bytes written). */
	int memfd = pread(17, buf, sizeof buf, 0) == 5 && memcmp(buf, "memfd", 5) == 0 && lseek(17, 0, SEEK_CUR) == 5;
	int file = lseek(18, 0, SEEK_CUR) == 1234 && (fcntl(18, F_GETFD) & FD_CLOEXEC) &&
		   (fcntl(18, F_GETFL) & O_ACCMODE) == O_RDWR;
	struct epoll_event ev;
	int epoll = epoll_wait(19, &ev, 1, 0) == 0;
	/* The image fd is what the thawer passed to CKPT_THAW: the image file, or the pipe (at its
	 * end) a streamed image came through. */
	const char *image = "bad";
	if (pread(20, buf, 4, 0) == 4 && memcmp(buf, "\177ELF", 4) == 0)
		image = "file";
	else if (fstat(20, &st) == 0 && S_ISFIFO(st.st_mode) && read(20, buf, 1) == 0)
		image = "pipe";
	printf("pipe_r=%d pipe_w=%d sock=%d eventfd=%d null=%d dir=%d opath=%d memfd=%d file=%d epoll=%d image=%s\n",
	       pipe_r, pipe_w, sock, efd, null, dir, opath, memfd, file, epoll, image);
	return pipe_r && pipe_w && sock && efd && null && dir && opath && memfd && file && epoll &&
			       strcmp(image, "bad") != 0
		       ? 0
		       : 1;
}
