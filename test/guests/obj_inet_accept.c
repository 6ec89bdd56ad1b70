/* obj_inet_accept: connections waiting in a listening TCP socket's accept queue through a freeze
 * and a thaw (docs/sockets.md, "TCP accept queues").
 *
 * usage: obj_inet_accept IMAGE [live]
 *
 * Fds: 10 AF_INET listener on 127.0.0.1:47401 (backlog 4) with three connections never accepted,
 * in this order: 11 (a client of this process that sent "a1a2"), one from a child process
 * (outside the image; it sent "ext"), 12 (a client of this process that sent "bee" and shut down
 * writing); 13 AF_INET6 listener on [::1]:47402 with one connection from the AF_INET6 client 14
 * ("six"); 15 AF_INET6 listener on [::]:47403 with one connection from the AF_INET client 17
 * ("map", v4-mapped on the listener's side); 16 AF_INET listener on 127.0.0.1:47404 whose only
 * pending connection comes from the child.
 *
 * Prints "r=<result> errno=<n>"; the freeze kills itself with SIGKILL. After a thaw it accepts on
 * each listener and checks the connections: the clients in the image in their order, from their
 * own ports, with their bytes, connected both ways; the child's are gone. Prints key=value lines
 * (1 = as expected), then "all=1" and exits 0 if all are. With "live" the process freezes without
 * dying ("freeze=<result> errno=<n>") and checks that the freeze left every accept queue as it
 * was: the child's connections are still there, in their places. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest.h"

static void must(int v, const char *what)
{
	if (v < 0) {
		perror(what);
		_exit(2);
	}
}

/* sa fills a sockaddr_in or sockaddr_in6 for the textual address ip (IPv6 if it has a ':'). */
static socklen_t sa(struct sockaddr_storage *s, const char *ip, int port)
{
	memset(s, 0, sizeof *s);
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)s;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &a->sin6_addr);
		return sizeof *a;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)s;
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	inet_pton(AF_INET, ip, &a->sin_addr);
	return sizeof *a;
}

static int listen_on(const char *ip, int port, int backlog)
{
	struct sockaddr_storage a;
	socklen_t l = sa(&a, ip, port);
	int s = socket(a.ss_family, SOCK_STREAM, 0);
	int one = 1;
	must(s, "socket");
	must(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), "SO_REUSEADDR");
	must(bind(s, (struct sockaddr *)&a, l), "bind");
	must(listen(s, backlog), "listen");
	return s;
}

static int connect_to(const char *ip, int port)
{
	struct sockaddr_storage a;
	socklen_t l = sa(&a, ip, port);
	int c = socket(a.ss_family, SOCK_STREAM, 0);
	must(c, "socket");
	must(connect(c, (struct sockaddr *)&a, l), "connect");
	return c;
}

static void send_all(int fd, const char *s)
{
	must(write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1, "write");
}

/* recv_all reads from fd until n bytes, EOF or 10 s without data (generous: a loaded machine), and
 * returns the count. */
static int recv_all(int fd, char *buf, int n)
{
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int got = 0;
	while (got < n) {
		/* Wait for the bytes first: some fds here are non-blocking (14, the IPv6 client, is in
		 * the O_NONBLOCK loop of main), and loopback delivery is asynchronous in gVisor's
		 * netstack, so a recv right after the peer's write could fail with EAGAIN (1 run in 16). */
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 10000) != 1)
			break;
		ssize_t r = recv(fd, buf + got, n - got, 0);
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

struct conn {
	int fd;
	struct sockaddr_storage peer; /* as accept(2) returned it */
	socklen_t len;
};

/* accept_nb accepts on the (non-blocking) listener l. */
static struct conn accept_nb(int l)
{
	struct conn c;
	c.len = sizeof c.peer;
	c.fd = accept4(l, (struct sockaddr *)&c.peer, &c.len, 0);
	return c;
}

/* same_addr compares two socket addresses (family, port, address). */
static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static struct sockaddr_storage name_of(int fd, int peer)
{
	struct sockaddr_storage a;
	socklen_t l = sizeof a;
	memset(&a, 0, sizeof a);
	if (peer)
		getpeername(fd, (struct sockaddr *)&a, &l);
	else
		getsockname(fd, (struct sockaddr *)&a, &l);
	return a;
}

/* talks checks that the accepted socket a and the client c exchange bytes both ways. */
static int talks(int a, int c)
{
	char buf[8];
	int step = 0;
	if (a >= 0 && ++step && write(a, "ok", 2) == 2 && ++step && recv_all(c, buf, 2) == 2 && ++step &&
	    memcmp(buf, "ok", 2) == 0 && ++step && write(c, "more", 4) == 4 && ++step && recv_all(a, buf, 4) == 4 &&
	    ++step && memcmp(buf, "more", 4) == 0)
		return 1;
	fprintf(stderr, "talks(%d, %d): failed after step %d: %s\n", a, c, step, strerror(errno));
	return 0;
}

/* got checks that the accepted connection c comes from want (the client's own address) and
 * carries exactly the bytes s. */
static int got(struct conn c, const struct sockaddr_storage *want, const char *s)
{
	char buf[64];
	int n = (int)strlen(s);
	return c.fd >= 0 && same_addr(&c.peer, want) && recv_all(c.fd, buf, n) == n && memcmp(buf, s, n) == 0;
}

int main(int argc, char **argv)
{
	if (argc != 2 && (argc != 3 || strcmp(argv[2], "live") != 0)) {
		fprintf(stderr, "usage: obj_inet_accept IMAGE [live]\n");
		return 2;
	}
	int live = argc == 3;
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IONBF, 0);
	at(listen_on("127.0.0.1", 47401, 4), 10);
	at(listen_on("::1", 47402, 2), 13);
	at(listen_on("::", 47403, 2), 15);
	at(listen_on("127.0.0.1", 47404, 1), 16);

	at(connect_to("127.0.0.1", 47401), 11);
	send_all(11, "a1a2");

	/* The child connects to 10 (second in its queue) and 16, sends, and waits to die with this
	 * process. */
	int sync[2];
	must(pipe(sync), "pipe");
	pid_t child = fork_dying_with_parent();
	if (child == 0) {
		/* Not the listeners: a same-sandbox thaw must find their ports free. */
		for (int fd = 10; fd <= 16; fd++)
			close(fd);
		int c = connect_to("127.0.0.1", 47401);
		int x = connect_to("127.0.0.1", 47404);
		if (write(c, "ext", 3) != 3 || write(x, "ext", 3) != 3 || write(sync[1], "c", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	char ch;
	while (read(sync[0], &ch, 1) < 0 && errno == EINTR)
		;
	close(sync[0]);
	close(sync[1]);

	at(connect_to("127.0.0.1", 47401), 12);
	at(connect_to("::1", 47402), 14);
	send_all(14, "six");
	at(connect_to("127.0.0.1", 47403), 17);
	send_all(17, "map");
	struct sockaddr_storage c11 = name_of(11, 0), c12 = name_of(12, 0), c14 = name_of(14, 0), c17 = name_of(17, 0);
	/* What the AF_INET6 listener 15 shows the AF_INET client 17 as: ::ffff:127.0.0.1. */
	struct sockaddr_storage c17m;
	sa(&c17m, "::ffff:127.0.0.1", ntohs(((struct sockaddr_in *)&c17)->sin_port));
	/* 12 sends and half-closes right before the freeze: its bytes and its FIN are still on their
	 * way through netstack's goroutines when the freeze looks at the accept queue, which must
	 * wait for them (a half-closed client is not ESTABLISHED, and was once not waited for). */
	send_all(12, "bee");
	must(shutdown(12, SHUT_WR), "shutdown");

	if (live) {
		long r = freeze_into(argv[1]);
		if (r != 0)
			return 1;
	} else {
		long r = freeze_and_die(argv[1]);
		if (r != 1)
			return r == 0 ? 0 : 1;
	}

	for (int fd = 10; fd <= 16; fd += fd == 10 ? 3 : 1)
		fcntl(fd, F_SETFL, O_NONBLOCK);
	/* 10: accept() returns 11's connection, then 12's; the child's is not kept. */
	struct conn a = accept_nb(10);
	check("first_is_11", got(a, &c11, "a1a2"));
	check("first_talks_back", talks(a.fd, 11));
	struct sockaddr_storage l10;
	sa(&l10, "127.0.0.1", 47401);
	struct sockaddr_storage p11 = name_of(11, 1);
	check("client_11_peer", same_addr(&p11, &l10));
	if (live) {
		struct conn e = accept_nb(10);
		struct sockaddr_storage lo;
		char buf[8];
		sa(&lo, "127.0.0.1", 0);
		check("live_external_kept", e.fd >= 0 && recv_all(e.fd, buf, 3) == 3 && memcmp(buf, "ext", 3) == 0);
	}
	struct conn b = accept_nb(10);
	char buf[8];
	check("second_is_12", got(b, &c12, "bee"));
	check("second_eof", b.fd >= 0 && recv(b.fd, buf, sizeof buf, 0) == 0);
	check("second_talks_back", b.fd >= 0 && write(b.fd, "zz", 2) == 2 && recv_all(12, buf, 2) == 2);
	check("client_12_shut_wr", write(12, "x", 1) < 0 && errno == EPIPE);
	errno = 0;
	struct conn x = accept_nb(10);
	check("external_dropped", x.fd < 0 && errno == EAGAIN);
	x = accept_nb(16);
	if (live)
		check("live_external_listener_kept", x.fd >= 0 && recv_all(x.fd, buf, 3) == 3);
	else
		check("external_listener_empty", x.fd < 0 && errno == EAGAIN);

	/* 13: the IPv6 connection; 15: the IPv4 client of the dual-stack listener, v4-mapped. */
	struct conn s6 = accept_nb(13);
	check("v6_is_14", got(s6, &c14, "six"));
	check("v6_talks_back", talks(s6.fd, 14));
	struct conn m = accept_nb(15);
	check("mapped_is_17", got(m, &c17m, "map"));
	check("mapped_talks_back", talks(m.fd, 17));

	/* The listeners still listen: a new client is accepted after the restored ones. */
	int nc = connect_to("127.0.0.1", 47401);
	send_all(nc, "new");
	fcntl(10, F_SETFL, 0);
	struct conn na = accept_nb(10);
	check("new_client", na.fd >= 0 && recv_all(na.fd, buf, 3) == 3);
	printf("all=%d\n", !check_fails);
	return check_fails ? 1 : 0;
}
