// tree_shared LOG: a parent and its child that share kernel objects, for TestTreeSharedObjectsOCI.
// Before the checkpoint (both then wait for SIGUSR1):
//   - a pipe, the parent writing "abc" that the child has not read yet;
//   - a unix socket pair, parent and child each holding one end, each having sent the other
//     "to-child" / "to-parent", unread;
//   - an eventfd with count 5, a memfd holding "memfd-v1" mapped MAP_SHARED by both, and a page of
//     shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS) holding 1, all inherited by fork;
//   - a SysV message queue holding one message "sysv-msg", which the child takes after the
//     restore (the parent then finds the queue empty: the message came back once);
//   - an epoll instance watching a pipe (data 1); after the restore the child makes that pipe
//     readable and adds a pipe of its own (data 2), and the parent's epoll_wait reports both;
//   - a unix listening socket bound to an abstract name, inherited by the child: the child
//     connects to the name after the restore and the parent accepts that connection.
// On SIGUSR1 the child reads the pipe and its socket end, reads the eventfd (5) and adds 2, writes
// "memfd-v2" through its mapping, sets the shared page to 2, sends "from-child", and logs
// "child ..." lines. A third process, cloned with CLONE_FS (one fs context with the parent), changes
// its working directory to /proc on SIGUSR1. Then, on SIGUSR1, the parent checks that it sees each
// of these (the objects are still one object each, the fs context still shared) and logs "parent
// ..." lines. A line ends in "ok" or says what was seen.
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <errno.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "guest.h"
#include "tree_log.h"

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: tree_shared LOG\n");
		return 2;
	}
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	int p[2], sp[2], ready[2];
	if (pipe(p) < 0 || pipe(ready) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		die("pipe/socketpair");
	int efd = eventfd(5, 0);
	int mfd = memfd_create("shared", 0);
	if (efd < 0 || mfd < 0 || write(mfd, "memfd-v1", 8) != 8)
		die("eventfd/memfd");
	char *mm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	volatile int *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mm == MAP_FAILED || anon == MAP_FAILED)
		die("mmap");
	*anon = 1;
	struct {
		long mtype;
		char text[16];
	} msg = {1, "sysv-msg"};
	int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (q < 0 || msgsnd(q, &msg, sizeof(msg.text), 0) < 0)
		die("msgget/msgsnd");
	int ep = epoll_create1(0), epp[2];
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
	if (ep < 0 || pipe(epp) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, epp[0], &ev) < 0)
		die("epoll");
	struct sockaddr_un ua = {.sun_family = AF_UNIX};
	snprintf(ua.sun_path + 1, sizeof(ua.sun_path) - 1, "tree-shared-%d", (int)getpid());
	socklen_t ualen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(ua.sun_path + 1);
	int ul = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (ul < 0 || bind(ul, (struct sockaddr *)&ua, ualen) < 0 || listen(ul, 4) < 0)
		die("unix listener");
	pid_t c = fork();
	if (c < 0)
		die("fork");
	char buf[64];
	if (c == 0) {
		close(p[1]);
		close(sp[0]);
		close(ready[0]);
		if (write(sp[1], "to-parent", 9) != 9 || write(ready[1], "x", 1) != 1)
			die("child write");
		close(ready[1]);
		waitusr1();
		logf_ = fopen(argv[1], "a");
		if (!logf_)
			die(argv[1]);
		buf[read_full(p[0], buf, 3)] = 0;
		logline("child", "pipe", strcmp(buf, "abc") == 0, buf);
		buf[read_full(sp[1], buf, 8)] = 0;
		logline("child", "socketpair", strcmp(buf, "to-child") == 0, buf);
		uint64_t v = 0;
		if (read(efd, &v, 8) != 8)
			v = 0;
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
		logline("child", "eventfd", v == 5, buf);
		v = 2;
		if (write(efd, &v, 8) != 8)
			die("eventfd write");
		memcpy(buf, mm, 8);
		buf[8] = 0;
		logline("child", "memfd", strcmp(buf, "memfd-v1") == 0, buf);
		memcpy(mm, "memfd-v2", 8);
		snprintf(buf, sizeof(buf), "%d", *anon);
		logline("child", "anon", *anon == 1, buf);
		*anon = 2;
		memset(&msg, 0, sizeof(msg));
		if (msgrcv(q, &msg, sizeof(msg.text), 0, IPC_NOWAIT) < 0)
			snprintf(msg.text, sizeof(msg.text), "errno %d", errno);
		logline("child", "sysv", strcmp(msg.text, "sysv-msg") == 0, msg.text);
		int own[2];
		struct epoll_event oev = {.events = EPOLLIN, .data.u64 = 2};
		if (pipe(own) < 0 || write(own[1], "e", 1) != 1 || write(epp[1], "e", 1) != 1)
			die("child epoll pipes");
		errno = 0;
		int rc = epoll_ctl(ep, EPOLL_CTL_ADD, own[0], &oev);
		snprintf(buf, sizeof(buf), "epoll_ctl %d errno %d", rc, errno);
		logline("child", "epoll-add", rc == 0, buf);
		int uc = socket(AF_UNIX, SOCK_STREAM, 0);
		errno = 0;
		rc = uc < 0 ? -1 : connect(uc, (struct sockaddr *)&ua, ualen);
		if (rc == 0 && write(uc, "u", 1) != 1)
			rc = -1;
		snprintf(buf, sizeof(buf), "connect %d errno %d", rc, errno);
		logline("child", "unix-connect", rc == 0, buf);
		if (write(sp[1], "from-child", 10) != 10)
			die("child send");
		fprintf(logf_, "child done\n");
		fflush(logf_);
		for (;;)
			pause();
	}
	close(p[0]);
	close(sp[1]);
	close(ready[1]);
	if (write(p[1], "abc", 3) != 3 || write(sp[0], "to-child", 8) != 8)
		die("parent write");
	if (read(ready[0], buf, 1) != 1)
		die("the child failed");
	close(ready[0]);
	// Open the log before the fs child moves the shared working directory.
	logf_ = fopen(argv[1], "a");
	if (!logf_)
		die(argv[1]);
	long fc = syscall(SYS_clone, CLONE_FS | SIGCHLD, 0, 0, 0, 0);
	if (fc < 0)
		die("clone");
	if (fc == 0) {
		waitusr1();
		if (chdir("/proc") < 0)
			die("chdir");
		fprintf(logf_, "fschild done\n");
		fflush(logf_);
		for (;;)
			pause();
	}
	printf("ready %d %ld\n", (int)c, fc);
	fflush(stdout);
	waitusr1();
	buf[read_full(sp[0], buf, 19)] = 0;
	logline("parent", "socketpair", strcmp(buf, "to-parentfrom-child") == 0, buf);
	uint64_t v = 0;
	if (read(efd, &v, 8) != 8)
		v = 0;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	logline("parent", "eventfd", v == 2, buf);
	memcpy(buf, mm, 8);
	buf[8] = 0;
	logline("parent", "memfd-mapping", strcmp(buf, "memfd-v2") == 0, buf);
	if (pread(mfd, buf, 8, 0) != 8)
		buf[0] = 0;
	buf[8] = 0;
	logline("parent", "memfd-fd", strcmp(buf, "memfd-v2") == 0, buf);
	snprintf(buf, sizeof(buf), "%d", *anon);
	logline("parent", "anon", *anon == 2, buf);
	if (!getcwd(buf, sizeof(buf)))
		buf[0] = 0;
	logline("parent", "fs-shared", strcmp(buf, "/proc") == 0, buf);
	errno = 0;
	ssize_t got = msgrcv(q, &msg, sizeof(msg.text), 0, IPC_NOWAIT);
	snprintf(buf, sizeof(buf), "msgrcv %zd errno %d", got, errno);
	logline("parent", "sysv-once", got < 0 && errno == ENOMSG, buf);
	struct epoll_event evs[4];
	int n = epoll_wait(ep, evs, 4, 0);
	unsigned long long sum = 0;
	for (int i = 0; i < n; i++)
		sum += evs[i].data.u64;
	snprintf(buf, sizeof(buf), "%d events, data sum %llu", n, sum);
	logline("parent", "epoll-shared", n == 2 && sum == 3, buf);
	errno = 0;
	int ua_fd = accept(ul, NULL, NULL);
	char u = 0;
	if (ua_fd >= 0 && read(ua_fd, &u, 1) != 1)
		u = 0;
	snprintf(buf, sizeof(buf), "accept %d errno %d byte %d", ua_fd, errno, u);
	logline("parent", "unix-listener", ua_fd >= 0 && u == 'u', buf);
	fprintf(logf_, "parent done\n");
	fflush(logf_);
	for (;;)
		pause();
}
