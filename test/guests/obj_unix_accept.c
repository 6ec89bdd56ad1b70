/* obj_unix_accept: connections waiting in a listening AF_UNIX socket's accept queue through a
 * freeze and a thaw (docs/sockets.md, "Accept queues").
 *
 * usage: obj_unix_accept IMAGE [live]
 *
 * Fds: 10 listening abstract stream socket "obj_unix_accept_s" (backlog 4) with three connections
 * never accepted, in this order: 11 (a client of this process that sent "a1" then "a2"), one from a
 * child process (outside the image; it sent "ext"), 12 (a client of this process that sent "bee"
 * and shut down writing); 13 listening seqpacket socket on the path /tmp/obj_unix_accept.sp with
 * one connection from 14, which sent the messages "m1" and "msg2"; 15 listening abstract stream
 * socket "obj_unix_accept_x" whose only pending connection comes from the child.
 *
 * Prints "r=<result> errno=<n>"; the freeze kills itself with SIGKILL. After a thaw it accepts on
 * each listener and checks the connections: the clients in the image in their order with their
 * bytes, connected both ways, the external one gone. Prints key=value lines (1 = as expected),
 * then "all=1" and exits 0 if all are. With "live" the process freezes without dying
 * ("freeze=<result> errno=<n>") and checks that the freeze left every accept queue as it was: the
 * child's connections are still there, in their places. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "guest.h"

static const char *const stream_name = "@obj_unix_accept_s", *const ext_name = "@obj_unix_accept_x",
		  *const sp_path = "/tmp/obj_unix_accept.sp";

static void must(int v, const char *what)
{
	if (v < 0) {
		perror(what);
		_exit(2);
	}
}

/* addr fills a sockaddr_un: a path, or an abstract name if name starts with '@'. */
static socklen_t addr(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	size_t n = strlen(name);
	memcpy(a->sun_path, name, n);
	if (name[0] == '@') {
		a->sun_path[0] = 0;
		return offsetof(struct sockaddr_un, sun_path) + n;
	}
	return offsetof(struct sockaddr_un, sun_path) + n + 1;
}

static int listen_on(int type, const char *name, int backlog)
{
	struct sockaddr_un a;
	socklen_t l = addr(&a, name);
	int s = socket(AF_UNIX, type, 0);
	must(s, "socket");
	must(bind(s, (struct sockaddr *)&a, l), "bind");
	must(listen(s, backlog), "listen");
	return s;
}

static int connect_to(int type, const char *name)
{
	struct sockaddr_un a;
	socklen_t l = addr(&a, name);
	int c = socket(AF_UNIX, type, 0);
	must(c, "socket");
	must(connect(c, (struct sockaddr *)&a, l), "connect");
	return c;
}

static int peer_is(int fd, const char *name)
{
	struct sockaddr_un a, want;
	socklen_t al = sizeof a, wl = addr(&want, name);
	return getpeername(fd, (struct sockaddr *)&a, &al) == 0 && al == wl && memcmp(&a, &want, wl) == 0;
}

/* recv_all reads from fd (non-blocking) until n bytes or nothing more, and returns the count. */
static int recv_all(int fd, char *buf, int n)
{
	int got = 0;
	while (got < n) {
		ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

/* accept_nb accepts on l (non-blocking after the freeze) and makes the new socket non-blocking. */
static int accept_nb(int l)
{
	return accept4(l, NULL, NULL, SOCK_NONBLOCK);
}

int main(int argc, char **argv)
{
	if (argc != 2 && (argc != 3 || strcmp(argv[2], "live") != 0)) {
		fprintf(stderr, "usage: obj_unix_accept IMAGE [live]\n");
		return 2;
	}
	int live = argc == 3;
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IONBF, 0);
	unlink(sp_path);
	at(listen_on(SOCK_STREAM, stream_name, 4), 10);
	at(listen_on(SOCK_SEQPACKET, sp_path, 2), 13);
	at(listen_on(SOCK_STREAM, ext_name, 1), 15);

	at(connect_to(SOCK_STREAM, stream_name), 11);
	must(write(11, "a1", 2), "write a1");
	must(write(11, "a2", 2), "write a2");

	/* The child connects to both stream listeners (second in 10's queue), sends, and waits to
	 * die with this process. */
	int sync[2];
	must(pipe(sync), "pipe");
	pid_t child = fork_dying_with_parent();
	if (child == 0) {
		/* Not the listeners: a same-sandbox thaw must find their names free once the parent is
		 * killed, whether or not this child has died yet. */
		close(10);
		close(11);
		close(13);
		close(15);
		int c = connect_to(SOCK_STREAM, stream_name);
		int x = connect_to(SOCK_STREAM, ext_name);
		if (write(c, "ext", 3) != 3 || write(x, "ext", 3) != 3 || write(sync[1], "c", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	char c;
	while (read(sync[0], &c, 1) < 0 && errno == EINTR)
		;
	close(sync[0]);
	close(sync[1]);

	at(connect_to(SOCK_STREAM, stream_name), 12);
	must(write(12, "bee", 3), "write bee");
	must(shutdown(12, SHUT_WR), "shutdown");

	at(connect_to(SOCK_SEQPACKET, sp_path), 14);
	must(send(14, "m1", 2, 0), "send m1");
	must(send(14, "msg2", 4, 0), "send msg2");

	if (live) {
		if (freeze_into(argv[1]) != 0)
			return 1;
	} else {
		long r = freeze_and_die(argv[1]);
		if (r != 1)
			return r == 0 ? 0 : 1;
	}

	char buf[64];
	fcntl(10, F_SETFL, O_NONBLOCK);
	fcntl(13, F_SETFL, O_NONBLOCK);
	fcntl(15, F_SETFL, O_NONBLOCK);
	/* 10: accept() returns 11's connection, then 12's; the child's is not kept. */
	int a = accept_nb(10);
	int n = recv_all(a, buf, sizeof buf);
	check("first_is_11", a >= 0 && n == 4 && memcmp(buf, "a1a2", 4) == 0);
	check("first_talks_back", a >= 0 && write(a, "ok", 2) == 2 && recv(11, buf, sizeof buf, MSG_DONTWAIT) == 2 &&
					  memcmp(buf, "ok", 2) == 0 && write(11, "more", 4) == 4 && recv_all(a, buf, 4) == 4);
	check("client_11_peer", peer_is(11, stream_name));
	if (live) {
		/* Not thawed: the child's connection is still second, with its bytes. */
		int e = accept_nb(10);
		check("live_external_kept", e >= 0 && recv_all(e, buf, 3) == 3 && memcmp(buf, "ext", 3) == 0);
	}
	int b = accept_nb(10);
	n = recv_all(b, buf, sizeof buf);
	check("second_is_12", b >= 0 && n == 3 && memcmp(buf, "bee", 3) == 0);
	check("second_eof", b >= 0 && recv(b, buf, sizeof buf, MSG_DONTWAIT) == 0);
	check("second_talks_back", b >= 0 && write(b, "zz", 2) == 2 && recv(12, buf, sizeof buf, MSG_DONTWAIT) == 2);
	check("client_12_shut_wr", write(12, "x", 1) < 0 && errno == EPIPE);
	errno = 0;
	check("external_dropped", accept_nb(10) < 0 && errno == EAGAIN);
	int x = accept_nb(15);
	if (live)
		check("live_external_listener_kept", x >= 0 && recv_all(x, buf, 3) == 3);
	else
		check("external_listener_empty", x < 0 && errno == EAGAIN);

	/* 13: the seqpacket connection with its two messages, boundaries kept. */
	int s = accept_nb(13);
	int m1 = s >= 0 ? (int)recv(s, buf, sizeof buf, MSG_DONTWAIT) : -1;
	int m1ok = m1 == 2 && memcmp(buf, "m1", 2) == 0;
	int m2 = s >= 0 ? (int)recv(s, buf, sizeof buf, MSG_DONTWAIT) : -1;
	check("seqpacket_messages", m1ok && m2 == 4 && memcmp(buf, "msg2", 4) == 0);
	check("seqpacket_talks_back", s >= 0 && send(s, "r", 1, 0) == 1 && recv(14, buf, sizeof buf, MSG_DONTWAIT) == 1);

	/* The listeners still listen: a new client is accepted after the restored ones. */
	int nc = connect_to(SOCK_STREAM, stream_name);
	int na = accept_nb(10);
	check("new_client", na >= 0 && write(nc, "new", 3) == 3 && recv_all(na, buf, 3) == 3);
	printf("all=%d\n", !check_fails);
	return check_fails ? 1 : 0;
}
