// tree_halfclose LOG: a TCP connection between two processes, half-closed, for
// TestTreeHalfClosedTCPOCI. The parent (the container's init) listens on 127.0.0.1, forks a child
// that connects, sends "before-the-fin" and shuts down writing (shutdown SHUT_WR); the parent
// accepts and reads nothing. Once the parent's end has seen the FIN (TCP_INFO: CLOSE_WAIT) and the
// child's its ACK (FIN_WAIT2), the parent prints "ready" and both wait for SIGUSR1.
// After the restore, on SIGUSR1 the parent reads its end until EOF: exactly the queued bytes, then
// end-of-file (the connection is still half-closed); it sends "reply" (the other direction still
// works) and logs "parent ..." lines. On SIGUSR1 the child reads "reply", checks that its own
// writes still fail with EPIPE (it had shut down writing), and logs "child ..." lines. A line ends
// in "ok" or says what was seen.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree_log.h"

static int tcp_state(int fd) {
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(&ti, 0, sizeof ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		die("TCP_INFO");
	return ti.tcpi_state;
}

#define QUEUED "before-the-fin"

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: tree_halfclose LOG\n");
		return 2;
	}
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!(logf_ = fopen(argv[1], "w")))
		die("log");
	setvbuf(stdout, NULL, _IONBF, 0);

	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &alen) != 0)
		die("listen");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(l);
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0)
			die("connect");
		if (write(c, QUEUED, strlen(QUEUED)) != (ssize_t)strlen(QUEUED) || shutdown(c, SHUT_WR) != 0)
			die("write, shutdown");
		while (tcp_state(c) != TCP_FIN_WAIT2)
			usleep(1000);
		waitusr1();
		char buf[64];
		ssize_t n, got = 0;
		while (got < 5 && (n = read(c, buf + got, sizeof buf - 1 - got)) > 0)
			got += n;
		buf[got > 0 ? got : 0] = 0;
		logline("child", "reads the reply", got == 5 && strcmp(buf, "reply") == 0, buf);
		errno = 0;
		n = write(c, "x", 1);
		char seen[64];
		snprintf(seen, sizeof seen, "write returned %zd errno %d", n, errno);
		logline("child", "write after SHUT_WR fails with EPIPE", n < 0 && errno == EPIPE, seen);
		logline("child", "done", 1, "");
		for (;;)
			pause();
	}
	int s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	close(l);
	while (tcp_state(s) != TCP_CLOSE_WAIT)
		usleep(1000);
	printf("ready\n");
	waitusr1();
	char buf[64];
	ssize_t n, got = 0;
	while ((n = read(s, buf + got, sizeof buf - 1 - got)) > 0)
		got += n;
	buf[got] = 0;
	char seen[192];
	snprintf(seen, sizeof seen, "read %zd bytes %s, then %zd errno %d", got, buf, n, errno);
	logline("parent", "reads the queued bytes then EOF", n == 0 && strcmp(buf, QUEUED) == 0, seen);
	n = write(s, "reply", 5);
	snprintf(seen, sizeof seen, "write returned %zd errno %d", n, errno);
	logline("parent", "writes the reply", n == 5, seen);
	logline("parent", "done", 1, "");
	for (;;) {
		int st;
		if (wait(&st) < 0 && errno == ECHILD)
			pause();
	}
}
