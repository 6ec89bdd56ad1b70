// tree_server: a pre-forking, multi-threaded TCP server for the tree checkpoint tests.
//
//   tree_server serve PORT NWORKERS LOG
//     The master listens on 127.0.0.1:PORT, forks NWORKERS workers that each accept on the shared
//     listening socket with two threads, starts a thread of its own, and forks a client that
//     connects, exchanges "hello 1" and appends "before: REPLY" to LOG; then the client waits for
//     SIGUSR1, exchanges "hello 2" on the same connection and appends "after: REPLY". The master
//     prints "ready" once the client's first exchange is done, then reaps children forever.
//   tree_server once PORT MSG
//     Connects, sends MSG, prints the reply.
//
// A worker replies to each line L with "worker PID: L" (PID: its getpid()).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int lsock;

static void die(const char *what) {
	perror(what);
	exit(1);
}

// readline reads up to a newline (kept out) into buf; returns the length or -1 at EOF/error.
static int readline(int fd, char *buf, int size) {
	int n = 0;
	while (n < size - 1) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n ? n : -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = 0;
	return n;
}

static void writeall(int fd, const char *s, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= w;
	}
}

static void *acceptor(void *arg) {
	(void)arg;
	for (;;) {
		int c = accept(lsock, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		char line[256], reply[320];
		while (readline(c, line, sizeof(line)) >= 0) {
			int n = snprintf(reply, sizeof(reply), "worker %d: %s\n", (int)getpid(), line);
			writeall(c, reply, n);
		}
		close(c);
	}
	return NULL;
}

static void *idle(void *arg) {
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static int dial(int port) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect");
	return s;
}

// exchange sends msg on s and returns the reply line in buf.
static void exchange(int s, const char *msg, char *buf, int size) {
	char out[256];
	int n = snprintf(out, sizeof(out), "%s\n", msg);
	writeall(s, out, n);
	if (readline(s, buf, size) < 0)
		die("no reply");
}

static void append(const char *log, const char *prefix, const char *line) {
	FILE *f = fopen(log, "a");
	if (!f)
		die(log);
	fprintf(f, "%s: %s\n", prefix, line);
	fclose(f);
}

static volatile sig_atomic_t told;
static void on_usr1(int sig) {
	(void)sig;
	told = 1;
}

static void client(int port, const char *log, int ready) {
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	int s = dial(port);
	char reply[320];
	exchange(s, "hello 1", reply, sizeof(reply));
	append(log, "before", reply);
	writeall(ready, "x", 1);
	close(ready);
	while (!told)
		pause();
	exchange(s, "hello 2", reply, sizeof(reply));
	append(log, "after", reply);
	for (;;)
		pause();
}

int main(int argc, char **argv) {
	if (argc == 4 && strcmp(argv[1], "once") == 0) {
		int s = dial(atoi(argv[2]));
		char reply[320];
		exchange(s, argv[3], reply, sizeof(reply));
		printf("%s\n", reply);
		return 0;
	}
	if (argc != 5 || strcmp(argv[1], "serve") != 0) {
		fprintf(stderr, "usage: tree_server serve PORT NWORKERS LOG | once PORT MSG\n");
		return 2;
	}
	int port = atoi(argv[2]), workers = atoi(argv[3]);
	lsock = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lsock < 0 || bind(lsock, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lsock, 16) < 0)
		die("listen");
	for (int i = 0; i < workers; i++) {
		pid_t p = fork();
		if (p < 0)
			die("fork");
		if (p == 0) {
			pthread_t th[2];
			for (int j = 0; j < 2; j++)
				if (pthread_create(&th[j], NULL, acceptor, NULL) != 0)
					die("pthread_create");
			for (;;)
				pause();
		}
	}
	int pp[2];
	if (pipe(pp) < 0)
		die("pipe");
	pid_t c = fork();
	if (c < 0)
		die("fork");
	if (c == 0) {
		close(pp[0]);
		close(lsock);
		client(port, argv[4], pp[1]);
	}
	close(pp[1]);
	char x;
	if (read(pp[0], &x, 1) != 1)
		die("the client failed");
	close(pp[0]);
	pthread_t th;
	if (pthread_create(&th, NULL, idle, NULL) != 0)
		die("pthread_create");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int st;
		if (wait(&st) < 0 && errno != EINTR)
			pause();
	}
}
