/* obj_inet: AF_INET/AF_INET6 sockets through a freeze and a thaw (docs/sockets.md, inet sockets).
 *
 * usage: obj_inet IMAGE
 *
 * Fds (numbers fixed with dup2):
 *   10 TCP  listening 127.0.0.1:7001, backlog 5, SO_REUSEADDR, SO_RCVBUF, SO_KEEPALIVE, TCP_NODELAY,
 *           O_NONBLOCK
 *   11 TCP6 listening [::]:7002, IPV6_V6ONLY, backlog 3
 *   12 TCP  unbound, SO_RCVTIMEO 1.25 s, SO_SNDTIMEO 2.5 s, SO_LINGER on/7
 *   13 TCP  bound 127.0.0.1:7003 (not listening), SO_REUSEPORT
 *   14,15 a loopback TCP connection (14 connected, 15 accepted), unread bytes both ways,
 *           TCP_NODELAY on 14, SO_KEEPALIVE on 15
 *   16,17 a v4-mapped connection: 16 an AF_INET6 socket connected to ::ffff:127.0.0.1, 17 the
 *           AF_INET end; unread bytes both ways, the last ones written right before the freeze
 *   18 UDP  bound 127.0.0.1:7004, three datagrams queued from 127.0.0.1:7005 and :7006
 *   19 UDP6 bound [::]:7011 (dual stack), datagrams from 127.0.0.1:7012 (v4-mapped) and [::1]:7013
 *   20 UDP  bound 127.0.0.1:7014, connected to 127.0.0.1:7015
 *   21 TCP  connected to a peer outside the image (a child process, killed after the freeze) that
 *           had sent "from-child": comes back with those bytes, then reset
 *   22 UDP6 unbound, IPV6_UNICAST_HOPS 9
 *   23 the image
 *   25,26 a loopback TCP connection half closed: 25 wrote "last words" and shut down writing, 26
 *           wrote "reply"; both unread
 *   27 TCP  connected to listener 10 but never accepted: its connection is in 10's accept queue,
 *           so after the thaw accept(10) returns it, connected to 27 (format 1.6)
 *   24 an ICMP (ping) socket, if the sandbox allows one: its state is not kept, it comes back as a
 *      fresh ICMP socket (docs/sockets.md, socket stubs): same domain, type and protocol
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it checks that the freeze left
 * its queues alone (after_freeze_udp, after_freeze_pair) and kills the child and itself with SIGKILL. After a thaw it checks every socket and prints one "name=0|1" per property
 * (1 = as expected, details on stderr), exiting 0 only if all are 1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

static void die(const char *what)
{
	perror(what);
	_exit(2);
}

static void seti(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof v) != 0)
		die("setsockopt");
}

static int geti(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof v;
	if (getsockopt(fd, level, name, &v, &l) != 0)
		return -1000 - errno;
	return v;
}

static struct sockaddr_in sin4(const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static struct sockaddr_in6 sin6(const char *ip, int port)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	inet_pton(AF_INET6, ip, &a.sin6_addr);
	return a;
}

static int bound(int family, int type, const void *addr, socklen_t len)
{
	int fd = socket(family, type, 0);
	if (fd < 0 || bind(fd, addr, len) != 0)
		die("bind");
	return fd;
}

/* name of a socket as "addr:port" (or an errno). */
static void name_of(int fd, int peer, char *out, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if ((peer ? getpeername(fd, (void *)&ss, &l) : getsockname(fd, (void *)&ss, &l)) != 0) {
		snprintf(out, n, "errno%d", errno);
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		port = ntohs(a->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (void *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		port = ntohs(a->sin6_port);
	}
	snprintf(out, n, "%s:%d", ip, port);
}

static int name_is(int fd, int peer, const char *want)
{
	char got[128];
	name_of(fd, peer, got, sizeof got);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "fd %d %s: %s, want %s\n", fd, peer ? "peer" : "name", got, want);
	return strcmp(got, want) == 0;
}

/* make a loopback connection through a temporary listener at laddr; returns client and server. */
static void conn(int cfamily, const void *laddr, socklen_t llen, const void *target, socklen_t tlen, int *c, int *s)
{
	int l = bound(((const struct sockaddr *)laddr)->sa_family, SOCK_STREAM, laddr, llen);
	if (listen(l, 1) != 0)
		die("listen");
	*c = socket(cfamily, SOCK_STREAM, 0);
	if (*c < 0 || connect(*c, target, tlen) != 0)
		die("connect");
	*s = accept(l, NULL, NULL);
	if (*s < 0)
		die("accept");
	close(l);
}

static void send_all(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		die("write");
}

/* wait until fd has n unread bytes (the loopback delivers on netstack's own goroutines). */
static void wait_inq(int fd, int n)
{
	for (int i = 0; i < 5000; i++) {
		int q = 0;
		if (ioctl(fd, FIONREAD, &q) == 0 && q >= n)
			return;
		usleep(1000);
	}
	fprintf(stderr, "fd %d: %d bytes never arrived\n", fd, n);
	_exit(2);
}

static int read_is(int fd, const char *want)
{
	char buf[256] = {0};
	ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, n) != 0) {
		fprintf(stderr, "fd %d read %zd %s (errno %d), want %s\n", fd, n, buf, errno, want);
		return 0;
	}
	return 1;
}

/* reads want from fd, waiting for it (poll, up to 5 s). */
static int read_wait(int fd, const char *want)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	poll(&p, 1, 5000);
	return read_is(fd, want);
}

static int dgram_is(int fd, const char *want_from, const char *want)
{
	char buf[256] = {0}, ip[INET6_ADDRSTRLEN] = "?", from[128];
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	ssize_t n = recvfrom(fd, buf, sizeof buf - 1, MSG_DONTWAIT, (void *)&ss, &l);
	int port = 0;
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	snprintf(from, sizeof from, "%s:%d", ip, port);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, n) != 0 || strcmp(from, want_from) != 0) {
		fprintf(stderr, "fd %d datagram %zd %s from %s (errno %d), want %s from %s\n", fd, n, buf, from, errno, want, want_from);
		return 0;
	}
	return 1;
}

static void send_from(int family, const void *src, socklen_t slen, const void *dst, socklen_t dlen, const char *msg)
{
	int fd = bound(family, SOCK_DGRAM, src, slen);
	if (sendto(fd, msg, strlen(msg), 0, dst, dlen) != (ssize_t)strlen(msg))
		die("sendto");
	close(fd);
}

/* connects a new client to a listener and accepts it. */
static int new_client(int lfd, int family, const void *addr, socklen_t len)
{
	int c = socket(family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, addr, len) != 0) {
		fprintf(stderr, "connect to listener fd %d: errno %d\n", lfd, errno);
		return 0;
	}
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	poll(&p, 1, 5000);
	int s = accept(lfd, NULL, NULL);
	int ok = s >= 0 && write(c, "hi", 2) == 2 && read_wait(s, "hi");
	if (s < 0)
		fprintf(stderr, "accept on fd %d: errno %d\n", lfd, errno);
	close(c);
	close(s);
	return ok;
}

/* values read before the freeze, compared after the thaw (memory comes back with the image). */
static int rcvbuf10, sndbuf10;
static struct timeval rcvtimeo12, sndtimeo12;

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in a;
	struct sockaddr_in6 a6;

	a = sin4("127.0.0.1", 7001);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	seti(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	seti(fd, SOL_SOCKET, SO_RCVBUF, 65536);
	seti(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	seti(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (bind(fd, (void *)&a, sizeof a) != 0 || listen(fd, 5) != 0)
		die("listener 7001");
	fcntl(fd, F_SETFL, O_NONBLOCK);
	at(fd, 10);
	rcvbuf10 = geti(10, SOL_SOCKET, SO_RCVBUF);
	sndbuf10 = geti(10, SOL_SOCKET, SO_SNDBUF);

	a6 = sin6("::", 7002);
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	seti(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	if (bind(fd, (void *)&a6, sizeof a6) != 0 || listen(fd, 3) != 0)
		die("listener 7002");
	at(fd, 11);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval rt = {1, 250000}, st = {2, 500000};
	struct linger lg = {1, 7};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof rt) || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &st, sizeof st) ||
	    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg))
		die("timeouts");
	at(fd, 12);
	socklen_t tl = sizeof rcvtimeo12;
	getsockopt(12, SOL_SOCKET, SO_RCVTIMEO, &rcvtimeo12, &tl);
	tl = sizeof sndtimeo12;
	getsockopt(12, SOL_SOCKET, SO_SNDTIMEO, &sndtimeo12, &tl);

	a = sin4("127.0.0.1", 7003);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	seti(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (bind(fd, (void *)&a, sizeof a) != 0)
		die("bind 7003");
	at(fd, 13);

	int c, s;
	a = sin4("127.0.0.1", 7009);
	conn(AF_INET, &a, sizeof a, &a, sizeof a, &c, &s);
	at(c, 14);
	at(s, 15);
	seti(14, IPPROTO_TCP, TCP_NODELAY, 1);
	seti(15, SOL_SOCKET, SO_KEEPALIVE, 1);
	send_all(14, "to-server");
	send_all(15, "to-client-xyz");
	wait_inq(15, 9);
	wait_inq(14, 13);

	a = sin4("127.0.0.1", 7010);
	a6 = sin6("::ffff:127.0.0.1", 7010);
	conn(AF_INET6, &a, sizeof a, &a6, sizeof a6, &c, &s);
	at(c, 16);
	at(s, 17);
	send_all(16, "mapped-up");
	send_all(17, "mapped-down");

	a = sin4("127.0.0.1", 7004);
	at(bound(AF_INET, SOCK_DGRAM, &a, sizeof a), 18);
	struct sockaddr_in src1 = sin4("127.0.0.1", 7005), src2 = sin4("127.0.0.1", 7006);
	send_from(AF_INET, &src1, sizeof src1, &a, sizeof a, "first");
	send_from(AF_INET, &src2, sizeof src2, &a, sizeof a, "second");
	send_from(AF_INET, &src1, sizeof src1, &a, sizeof a, "third");

	a6 = sin6("::", 7011);
	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	seti(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	if (bind(fd, (void *)&a6, sizeof a6) != 0)
		die("bind 7011");
	at(fd, 19);
	struct sockaddr_in src3 = sin4("127.0.0.1", 7012), dst3 = sin4("127.0.0.1", 7011);
	struct sockaddr_in6 src4 = sin6("::1", 7013), dst4 = sin6("::1", 7011);
	send_from(AF_INET, &src3, sizeof src3, &dst3, sizeof dst3, "via-v4");
	send_from(AF_INET6, &src4, sizeof src4, &dst4, sizeof dst4, "via-v6");

	a = sin4("127.0.0.1", 7014);
	fd = bound(AF_INET, SOCK_DGRAM, &a, sizeof a);
	struct sockaddr_in peer = sin4("127.0.0.1", 7015);
	if (connect(fd, (void *)&peer, sizeof peer) != 0)
		die("connect udp");
	at(fd, 20);

	/* A peer outside the image: a child holds the server side. */
	a = sin4("127.0.0.1", 7020);
	int l = bound(AF_INET, SOCK_STREAM, &a, sizeof a);
	if (listen(l, 1) != 0)
		die("listen 7020");
	pid_t child = fork();
	if (child == 0) {
		int sc = accept(l, NULL, NULL);
		if (sc < 0 || write(sc, "from-child", 10) != 10)
			_exit(2);
		for (;;)
			pause();
	}
	close(l);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (void *)&a, sizeof a) != 0)
		die("connect 7020");
	at(fd, 21);
	wait_inq(21, 10);

	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	seti(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9);
	at(fd, 22);

	a = sin4("127.0.0.1", 7030);
	conn(AF_INET, &a, sizeof a, &a, sizeof a, &c, &s);
	at(c, 25);
	at(s, 26);
	send_all(25, "last words");
	if (shutdown(25, SHUT_WR) != 0)
		die("shutdown");
	send_all(26, "reply");
	wait_inq(26, 10);
	wait_inq(25, 5);

	a = sin4("127.0.0.1", 7001);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (void *)&a, sizeof a) != 0)
		die("connect 7001");
	at(fd, 27);

	at(open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600), 23);
	fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	int have_icmp = fd >= 0;
	if (have_icmp)
		at(fd, 24);
	send_all(17, "-late"); /* still on its way when the freeze starts, maybe */

	long r = sys_checkpoint(CKPT_FREEZE, 23, -1, 0);
	printf("r=%ld errno=%d\n", r, r < 0 ? errno : 0);
	fflush(stdout);
	if (r == 0) {
		/* The freeze must not have consumed anything: the process goes on with its sockets as
		 * they were (the image is written; reading now changes nothing in it). */
		check("after_freeze_udp", dgram_is(18, "127.0.0.1:7005", "first") && dgram_is(18, "127.0.0.1:7006", "second") &&
					      dgram_is(18, "127.0.0.1:7005", "third") && dgram_is(19, "::ffff:127.0.0.1:7012", "via-v4"));
		check("after_freeze_pair", read_is(14, "to-client-xyz") && read_is(15, "to-server"));
		fflush(stdout);
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		kill(getpid(), SIGKILL);
	}
	if (r != 1)
		return 1;

	/* 10: the listener. */
	check("l4_name", name_is(10, 0, "127.0.0.1:7001"));
	check("l4_listening", geti(10, SOL_SOCKET, SO_ACCEPTCONN) == 1);
	check("l4_opts", geti(10, SOL_SOCKET, SO_REUSEADDR) == 1 && geti(10, SOL_SOCKET, SO_KEEPALIVE) == 1 &&
				 geti(10, IPPROTO_TCP, TCP_NODELAY) == 1);
	check("l4_bufs", geti(10, SOL_SOCKET, SO_RCVBUF) == rcvbuf10 && geti(10, SOL_SOCKET, SO_SNDBUF) == sndbuf10);
	check("l4_nonblock", fcntl(10, F_GETFL) & O_NONBLOCK);
	/* 27's connection is the only one waiting in 10's accept queue. */
	int q27 = accept(10, NULL, NULL);
	errno = 0;
	check("l4_queue", q27 >= 0 && accept(10, NULL, NULL) < 0 && errno == EAGAIN);
	a = sin4("127.0.0.1", 7001);
	check("l4_client", new_client(10, AF_INET, &a, sizeof a));

	/* 11: the IPv6-only listener. */
	check("l6_name", name_is(11, 0, ":::7002"));
	check("l6_v6only", geti(11, IPPROTO_IPV6, IPV6_V6ONLY) == 1);
	a6 = sin6("::1", 7002);
	check("l6_client", new_client(11, AF_INET6, &a6, sizeof a6));
	a = sin4("127.0.0.1", 7002);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	check("l6_no_v4", connect(fd, (void *)&a, sizeof a) != 0 && errno == ECONNREFUSED);
	close(fd);

	/* 12: unbound, with timeouts. */
	struct timeval gt;
	tl = sizeof gt;
	check("unbound_name", name_is(12, 0, "0.0.0.0:0") && geti(12, SOL_SOCKET, SO_TYPE) == SOCK_STREAM);
	int tok = getsockopt(12, SOL_SOCKET, SO_RCVTIMEO, &gt, &tl) == 0 && gt.tv_sec == rcvtimeo12.tv_sec && gt.tv_usec == rcvtimeo12.tv_usec;
	tok = tok && getsockopt(12, SOL_SOCKET, SO_SNDTIMEO, &gt, &tl) == 0 && gt.tv_sec == sndtimeo12.tv_sec && gt.tv_usec == sndtimeo12.tv_usec;
	struct linger gl;
	tl = sizeof gl;
	tok = tok && getsockopt(12, SOL_SOCKET, SO_LINGER, &gl, &tl) == 0 && gl.l_onoff == 1 && gl.l_linger == 7;
	check("unbound_opts", tok);

	/* 13: bound, not listening. */
	check("bound_name", name_is(13, 0, "127.0.0.1:7003") && geti(13, SOL_SOCKET, SO_ACCEPTCONN) == 0 &&
				    geti(13, SOL_SOCKET, SO_REUSEPORT) == 1);

	/* 14/15: the loopback pair. */
	char n14[128], p15[128];
	name_of(14, 0, n14, sizeof n14);
	check("pair_peers", name_is(15, 1, n14) && (name_of(15, 0, p15, sizeof p15), name_is(14, 1, p15)));
	check("pair_unread", read_is(14, "to-client-xyz") && read_is(15, "to-server"));
	send_all(14, "ping");
	send_all(15, "pong");
	check("pair_talk", read_wait(15, "ping") && read_wait(14, "pong"));
	check("pair_opts", geti(14, IPPROTO_TCP, TCP_NODELAY) == 1 && geti(15, SOL_SOCKET, SO_KEEPALIVE) == 1);

	/* 16/17: the v4-mapped pair. */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(16, (void *)&ss, &sl);
	int fam16 = ss.ss_family;
	sl = sizeof ss;
	getsockname(17, (void *)&ss, &sl);
	check("mapped_families", fam16 == AF_INET6 && ss.ss_family == AF_INET);
	check("mapped_unread", read_is(16, "mapped-down-late") && read_is(17, "mapped-up"));
	send_all(17, "again");
	check("mapped_talk", read_wait(16, "again"));

	/* 18, 19: queued datagrams with their sources, in order. */
	check("udp_queue", dgram_is(18, "127.0.0.1:7005", "first") && dgram_is(18, "127.0.0.1:7006", "second") &&
				   dgram_is(18, "127.0.0.1:7005", "third") && recv(18, n14, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN);
	check("udp_name", name_is(18, 0, "127.0.0.1:7004"));
	check("udp6_queue", dgram_is(19, "::ffff:127.0.0.1:7012", "via-v4") && dgram_is(19, "::1:7013", "via-v6"));
	check("udp6_dualstack", geti(19, IPPROTO_IPV6, IPV6_V6ONLY) == 0 && name_is(19, 0, ":::7011"));

	/* 20: connected UDP: the peer and the default destination. */
	a = sin4("127.0.0.1", 7015);
	int rx = bound(AF_INET, SOCK_DGRAM, &a, sizeof a);
	check("udp_connected", name_is(20, 1, "127.0.0.1:7015") && name_is(20, 0, "127.0.0.1:7014") &&
				       send(20, "conn", 4, 0) == 4 && dgram_is(rx, "127.0.0.1:7014", "conn"));
	close(rx);

	/* 21: the connection to a peer outside the image: reset, still a TCP socket. */
	check("reset_type", geti(21, SOL_SOCKET, SO_TYPE) == SOCK_STREAM && geti(21, SOL_SOCKET, SO_DOMAIN) == AF_INET);
	check("reset_unread", read_is(21, "from-child"));
	char b;
	errno = 0;
	ssize_t rn = read(21, &b, 1);
	int rerr = errno;
	errno = 0;
	ssize_t wn = send(21, "x", 1, MSG_NOSIGNAL);
	int werr = errno;
	if (!(rn < 0 && rerr == ECONNRESET && wn < 0 && werr == EPIPE))
		fprintf(stderr, "reset: read %zd errno %d, write %zd errno %d\n", rn, rerr, wn, werr);
	check("reset_errors", rn < 0 && rerr == ECONNRESET && wn < 0 && werr == EPIPE);
	struct sockaddr_storage rp;
	socklen_t rpl = sizeof rp;
	check("reset_unconnected", getpeername(21, (void *)&rp, &rpl) != 0 && errno == ENOTCONN);

	/* 22: unbound UDP6 with an option. */
	check("udp6_unbound", name_is(22, 0, ":::0") && geti(22, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM &&
				      geti(22, IPPROTO_IPV6, IPV6_UNICAST_HOPS) == 9);
	/* 25/26: the half-closed connection: 26 reads the words, then EOF, and can still answer; 25
	 * reads, but cannot write. */
	char eof;
	check("half_closed", read_is(26, "last words") && read(26, &eof, 1) == 0 && read_is(25, "reply"));
	send_all(26, "more");
	check("half_closed_talk", read_wait(25, "more") && send(25, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE);

	/* 27: the client that was never accepted: connected to the connection accept(10) returned. */
	check("unaccepted_queued", q27 >= 0 && send(27, "q", 1, 0) == 1 && read_wait(q27, "q") && send(q27, "r", 1, 0) == 1 &&
					   read_wait(27, "r"));

	/* 24: ICMP sockets' state is not kept: a fresh socket of the same kind (never ENOTSOCK). */
	if (have_icmp) {
		check("icmp_stub", geti(24, SOL_SOCKET, SO_DOMAIN) == AF_INET && geti(24, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM &&
					   geti(24, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_ICMP);
	} else {
		printf("icmp_stub=skip\n");
	}
	printf("done=%d\n", !check_fails);
	return check_fails ? 1 : 0;
}
