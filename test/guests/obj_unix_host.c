/* obj_unix_host: a host-backed unix socket (the sandbox's stdout is a socket on the host) through a
 * freeze and a thaw (docs/sockets.md: it comes back as a socket whose peer is gone).
 *
 * usage: obj_unix_host IMAGE     (stdout must be a unix stream socket)
 *
 * Fd 20 is a dup of stdout. Prints "r=<result> errno=<n>"; the freeze kills itself. After a thaw
 * (stdout is the thawer's then) it prints "host_type=.. host_epipe=.. host_reset=.." and exits 0
 * if fd 20 is a stream socket whose writes fail with EPIPE and reads with ECONNRESET. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest.h"

int main(int argc, char **argv)
{
	int type = 0;
	socklen_t tl = sizeof type;
	if (argc < 2 || getsockopt(1, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM) {
		fprintf(stderr, "usage: %s IMAGE, with a unix stream socket as stdout\n", argv[0]);
		return 2;
	}
	if (dup2(1, 20) != 20)
		return 2;
	int img = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (img < 0 || dup2(img, 29) != 29)
		return 2;
	freeze_fd_and_die(29);
	signal(SIGPIPE, SIG_IGN);
	char c;
	type = 0;
	int host_type = getsockopt(20, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM;
	int host_epipe = write(20, "x", 1) < 0 && errno == EPIPE;
	int host_reset = read(20, &c, 1) < 0 && errno == ECONNRESET;
	printf("host_type=%d host_epipe=%d host_reset=%d\n", host_type, host_epipe, host_reset);
	return host_type && host_epipe && host_reset ? 0 : 1;
}
