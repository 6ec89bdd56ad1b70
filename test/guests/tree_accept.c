// tree_accept LOG [tcp]: connections waiting in a listener's accept queue across a container
// restore, for TestTreeUnixAcceptQueueOCI and (with "tcp") TestTreeTCPAcceptQueueOCI. The parent
// (the container's init) listens on the abstract stream name "tree_accept" (with "tcp": on
// 127.0.0.1:47411) and never accepts before the checkpoint; its own client (fd
// kept) connects first and sends "from-parent"; then a child connects, sends "from-child" and waits.
// The parent prints "ready" and both wait for SIGUSR1.
// After the restore, on SIGUSR1 the parent accepts without blocking: its own client's connection
// first, with its bytes, then the child's, to which it writes "reply"; a third accept finds nothing;
// it logs "parent ..." lines. On SIGUSR1 the child reads "reply" on its socket and sends "again",
// which the parent's end then holds; it logs "child ..." lines. A line ends in "ok" or says what
// was seen.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tree_log.h"

static int tcp; /* TCP on the loopback instead of a unix socket */

/* name fills the listener's address. */
static socklen_t name(struct sockaddr_storage *s)
{
	static const char n[] = "\0tree_accept";
	memset(s, 0, sizeof *s);
	if (tcp) {
		struct sockaddr_in *a = (struct sockaddr_in *)s;
		a->sin_family = AF_INET;
		a->sin_port = htons(47411);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof *a;
	}
	struct sockaddr_un *a = (struct sockaddr_un *)s;
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, n, sizeof n - 1);
	return offsetof(struct sockaddr_un, sun_path) + sizeof n - 1;
}

static int client(const char *msg)
{
	struct sockaddr_storage a;
	socklen_t l = name(&a);
	int c = socket(a.ss_family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, l) != 0)
		die("connect");
	if (write(c, msg, strlen(msg)) != (ssize_t)strlen(msg))
		die("write");
	return c;
}

/* readn reads up to n bytes from s until n, EOF, or (non-blocking s) 10 s without data: TCP on
 * the loopback delivers on netstack's own goroutines, so bytes just written may not be there yet. */
static int readn(int s, char *buf, int n)
{
	int got = 0;
	for (;;) {
		ssize_t r = got < n ? read(s, buf + got, n - got) : 0;
		if (r > 0) {
			got += r;
			continue;
		}
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (r < 0 && errno == EAGAIN && poll(&p, 1, 10000) == 1)
			continue;
		break;
	}
	buf[got] = 0;
	return got;
}

int main(int argc, char **argv)
{
	if (argc != 2 && (argc != 3 || strcmp(argv[2], "tcp") != 0)) {
		fprintf(stderr, "usage: tree_accept LOG [tcp]\n");
		return 2;
	}
	tcp = argc == 3;
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!(logf_ = fopen(argv[1], "w")))
		die("log");
	setvbuf(stdout, NULL, _IONBF, 0);

	struct sockaddr_storage a;
	socklen_t alen = name(&a);
	int l = socket(a.ss_family, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, alen) != 0 || listen(l, 4) != 0)
		die("listen");
	int own = client("from-parent");
	int sync[2];
	if (pipe(sync) != 0)
		die("pipe");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(l);
		close(own);
		int c = client("from-child");
		if (write(sync[1], "c", 1) != 1)
			die("sync");
		waitusr1();
		char buf[64], seen[128];
		int n = readn(c, buf, 5);
		snprintf(seen, sizeof seen, "read %d bytes %s errno %d", n, buf, errno);
		logline("child", "reads the reply", n == 5 && strcmp(buf, "reply") == 0, seen);
		n = write(c, "again", 5);
		snprintf(seen, sizeof seen, "write returned %d errno %d", n, errno);
		logline("child", "writes again", n == 5, seen);
		logline("child", "done", 1, "");
		for (;;)
			pause();
	}
	char c;
	if (read(sync[0], &c, 1) != 1)
		die("sync");
	printf("ready\n");
	waitusr1();
	fcntl(l, F_SETFL, O_NONBLOCK);
	char buf[64], seen[192];
	int s1 = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	int n = s1 >= 0 ? readn(s1, buf, 11) : -1;
	snprintf(seen, sizeof seen, "accept %d errno %d, read %d %s", s1, errno, n, n > 0 ? buf : "");
	logline("parent", "accepts its own client first", n == 11 && strcmp(buf, "from-parent") == 0, seen);
	n = s1 >= 0 ? (int)write(own, "x", 1) : -1;
	logline("parent", "its client still talks", n == 1 && readn(s1, buf, 1) == 1 && buf[0] == 'x', "write or read failed");
	int s2 = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	n = s2 >= 0 ? readn(s2, buf, 10) : -1;
	snprintf(seen, sizeof seen, "accept %d errno %d, read %d %s", s2, errno, n, n > 0 ? buf : "");
	logline("parent", "accepts the child's connection second", n == 10 && strcmp(buf, "from-child") == 0, seen);
	n = s2 >= 0 ? (int)write(s2, "reply", 5) : -1;
	logline("parent", "writes the reply", n == 5, "write failed");
	errno = 0;
	int s3 = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	snprintf(seen, sizeof seen, "accept %d errno %d", s3, errno);
	logline("parent", "nothing more pending", s3 < 0 && errno == EAGAIN, seen);
	logline("parent", "done", 1, "");
	printf("parent done\n");
	// The child's "again" reaches s2 once it has been told (the test reads the log for it).
	fcntl(s2, F_SETFL, 0);
	n = readn(s2, buf, 5);
	logline("parent", "reads the child's second message", n == 5 && strcmp(buf, "again") == 0, "read failed");
	for (;;) {
		int st;
		if (wait(&st) < 0 && errno == ECHILD)
			pause();
	}
}
