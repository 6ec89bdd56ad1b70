/* obj_all: one process holding one of each kernel object the image rebuilds, frozen, killed and
 * thawed (issue 8's "all in one process" check). Each kind has its own thorough guest (obj_*.c);
 * this one shows that they coexist: an epoll instance watches a socket, a pipe and a timerfd, a
 * POSIX timer's signal arrives through a signalfd, and so on.
 *
 * usage: obj_all IMAGE
 *
 * Fds (fixed with dup2): 10/11 pipe (5 unread bytes), 12/13 unix stream socketpair (3 bytes queued
 * towards 12), 14 unix listener (abstract name, backlog 4), 15 TCP listener on 127.0.0.1:PORT,
 * 16 UDP socket bound to 127.0.0.1:PORT+1 with one queued datagram, 17 memfd (sealed, 8 KiB with
 * a hole), 18 unlinked temp file (content, offset 3), 19 eventfd (count 7), 20 timerfd (armed
 * 300 ms, interval 100 ms), 21 signalfd (SIGUSR1), 22 epoll on 10, 12 and 20, 23 /proc/self/status,
 * 24 the image, 25/26 a pty master and its replica (window size 77x21), 27 inotify watching /tmp
 * for IN_CREATE; SIGRTMIN+3 queued (value 5) and blocked. A POSIX timer (CLOCK_MONOTONIC, 1 s, value 42) signals SIGUSR1, which is blocked
 * and read through the signalfd. Timers keep their remaining time across the thaw.
 * Also: a line "q\n" queued in the pty for the replica's reader; 28 a pidfd of the process itself;
 * 29/30 a TCP loopback connection (client, accepted end) with unread bytes both ways; SysV shared
 * memory (attached, "shm!"), a semaphore set (value 3) and a message queue (one message, type 7);
 * umask 027; one page marked MADV_DONTFORK; 31 /proc/self/ns/net (an nsfs fd); 32/33 a unix
 * datagram socketpair with two messages queued towards 32 (their boundaries kept); 34 a file of
 * a directory that was removed (file unlinked, then the directory), offset 2; 35 a netlink route
 * socket (its state is not kept: a fresh one of the same kind).
 * Prints "r=0 errno=0" after the freeze and kills itself; after the thaw checks everything and
 * prints one "name=0|1" per object, then "all=1" and exits 0 when every one is right. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define PORT 47811

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int waitable(int fd, int ms)
{
	struct timespec ts = {0, 1000000};
	for (int i = 0; i < ms; i++) {
		char c;
		if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* waitable_fd waits at most 2 s for fd to become readable. */
static int waitable_fd(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	return poll(&pfd, 1, 2000) == 1;
}

/* fail_at reports a setup step that failed (before the freeze) and returns the setup exit code. */
static int fail_at(int line)
{
	fprintf(stderr, "obj_all: setup failed at line %d: %s\n", line, strerror(errno));
	return 2;
}

static int ok(const char *name, int v)
{
	printf("%s=%d\n", name, v ? 1 : 0);
	return v ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return fail_at(__LINE__);
	}
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);

	int p[2], s[2];
	if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, s) || write(p[1], "pipe!", 5) != 5 || write(s[1], "abc", 3) != 3)
		return fail_at(__LINE__);
	at(p[0], 10);
	at(p[1], 11);
	at(s[0], 12);
	at(s[1], 13);

	int ul = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un ua = {.sun_family = AF_UNIX};
	memcpy(ua.sun_path + 1, "obj_all", 7);
	socklen_t ulen = offsetof(struct sockaddr_un, sun_path) + 8;
	if (bind(ul, (struct sockaddr *)&ua, ulen) || listen(ul, 4))
		return fail_at(__LINE__);
	at(ul, 14);

	int one = 1;
	int tl = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in ta = loopback(PORT);
	setsockopt(tl, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(tl, (struct sockaddr *)&ta, sizeof ta) || listen(tl, 8))
		return fail_at(__LINE__);
	at(tl, 15);

	int us = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in ba = loopback(PORT + 1);
	if (bind(us, (struct sockaddr *)&ba, sizeof ba))
		return fail_at(__LINE__);
	int snd = socket(AF_INET, SOCK_DGRAM, 0);
	if (sendto(snd, "datagram", 8, 0, (struct sockaddr *)&ba, sizeof ba) != 8 || !waitable(us, 2000))
		return fail_at(__LINE__);
	close(snd);
	at(us, 16);

	int mfd = memfd_create("obj_all", MFD_ALLOW_SEALING);
	if (mfd < 0 || ftruncate(mfd, 8192) || pwrite(mfd, "memfd", 5, 0) != 5 || pwrite(mfd, "tail", 4, 8188) != 4 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		return fail_at(__LINE__);
	at(mfd, 17);

	char tmpl[] = "/tmp/obj_all.XXXXXX";
	int uf = mkstemp(tmpl);
	if (uf < 0 || write(uf, "unlinked file", 13) != 13 || unlink(tmpl) || lseek(uf, 3, SEEK_SET) != 3)
		return fail_at(__LINE__);
	at(uf, 18);
	/* Before the inotify watch on /tmp exists: these are not its events. */
	char gone[64], goneFile[80];
	snprintf(gone, sizeof gone, "/tmp/obj_all.dir.%d", (int)getpid());
	snprintf(goneFile, sizeof goneFile, "%s/f", gone);
	if (mkdir(gone, 0700))
		return fail_at(__LINE__);
	int gf = open(goneFile, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (gf < 0 || write(gf, "in a removed dir", 16) != 16 || lseek(gf, 2, SEEK_SET) != 2 || unlink(goneFile) || rmdir(gone))
		return fail_at(__LINE__);
	at(gf, 34);

	at(eventfd(7, 0), 19);

	int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	struct itimerspec its = {.it_value = {0, 300000000}, .it_interval = {0, 100000000}};
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL))
		return fail_at(__LINE__);
	at(tfd, 20);

	at(signalfd(-1, &usr1, 0), 21);

	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1010};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, 10, &ev))
		return fail_at(__LINE__);
	ev.data.u64 = 1212;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, 12, &ev))
		return fail_at(__LINE__);
	ev.data.u64 = 2020;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, 20, &ev))
		return fail_at(__LINE__);
	at(ep, 22);

	at(open("/proc/self/status", O_RDONLY), 23);

	timer_t tid;
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1, .sigev_value.sival_int = 42};
	struct itimerspec pts = {.it_value = {1, 0}};
	if (timer_create(CLOCK_MONOTONIC, &sev, &tid) || timer_settime(tid, 0, &pts, NULL))
		return fail_at(__LINE__);

	/* A pty pair with a window size, an inotify watch, a queued real-time signal with a value. */
	int pm = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (pm < 0 || grantpt(pm) || unlockpt(pm))
		return fail_at(__LINE__);
	struct winsize ws = {.ws_row = 21, .ws_col = 77};
	int pr = open(ptsname(pm), O_RDWR | O_NOCTTY);
	if (pr < 0 || ioctl(pm, TIOCSWINSZ, &ws))
		return fail_at(__LINE__);
	at(pm, 25);
	at(pr, 26);
	int ino = inotify_init1(IN_NONBLOCK);
	if (ino < 0 || inotify_add_watch(ino, "/tmp", IN_CREATE) != 1)
		return fail_at(__LINE__);
	at(ino, 27);
	sigset_t rt;
	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN + 3);
	sigprocmask(SIG_BLOCK, &rt, NULL);
	union sigval sv = {.sival_int = 5};
	if (sigqueue(getpid(), SIGRTMIN + 3, sv))
		return fail_at(__LINE__);

	/* Queued terminal input, a pidfd, a TCP connection, SysV IPC, umask, MADV_DONTFORK. */
	if (write(25, "q\n", 2) != 2)
		return fail_at(__LINE__);
	at(syscall(SYS_pidfd_open, getpid(), 0), 28);
	int tc = socket(AF_INET, SOCK_STREAM, 0);
	if (tc < 0 || connect(tc, (struct sockaddr *)&ta, sizeof ta))
		return fail_at(__LINE__);
	at(tc, 29);
	at(accept(15, NULL, NULL), 30);
	if (write(29, "to-acc", 6) != 6 || write(30, "to-cli", 6) != 6 || !waitable(29, 2000) || !waitable(30, 2000))
		return fail_at(__LINE__);
	int shmid = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	char *shm = shmid < 0 ? (char *)-1 : shmat(shmid, NULL, 0);
	if (shm == (char *)-1)
		return fail_at(__LINE__);
	memcpy(shm, "shm!", 4);
	int semid = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	if (semid < 0 || semctl(semid, 0, SETVAL, 3))
		return fail_at(__LINE__);
	int msqid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	struct {
		long type;
		char text[8];
	} msg = {7, "msg"};
	if (msqid < 0 || msgsnd(msqid, &msg, 4, 0))
		return fail_at(__LINE__);
	umask(027);
	char *df = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (df == MAP_FAILED || madvise(df, 4096, MADV_DONTFORK))
		return fail_at(__LINE__);
	df[0] = 'd';
	at(open("/proc/self/ns/net", O_RDONLY), 31);
	at(socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */), 35);
	int dg[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || write(dg[1], "one", 3) != 3 || write(dg[1], "second", 6) != 6)
		return fail_at(__LINE__);
	at(dg[0], 32);
	at(dg[1], 33);

	at(open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644), 24);
	long r = freeze_fd_and_die(24);
	if (r != 1)
		return 1;

	signal(SIGPIPE, SIG_IGN);
	char buf[64];
	int all = 1;
	all &= ok("pipe", read(10, buf, sizeof buf) == 5 && memcmp(buf, "pipe!", 5) == 0 && write(11, "x", 1) == 1 &&
				  read(10, buf, 1) == 1);
	all &= ok("socketpair", read(12, buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0 && write(12, "z", 1) == 1 &&
					read(13, buf, 1) == 1 && buf[0] == 'z');

	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	int a = -1;
	all &= ok("unix_listener", connect(c, (struct sockaddr *)&ua, ulen) == 0 && (a = accept(14, NULL, NULL)) >= 0 &&
					   write(c, "u", 1) == 1 && read(a, buf, 1) == 1 && buf[0] == 'u');
	close(c);
	close(a);

	c = socket(AF_INET, SOCK_STREAM, 0);
	a = -1;
	all &= ok("tcp_listener", connect(c, (struct sockaddr *)&ta, sizeof ta) == 0 && (a = accept(15, NULL, NULL)) >= 0 &&
					  write(a, "t", 1) == 1 && read(c, buf, 1) == 1 && buf[0] == 't');
	close(c);
	close(a);

	struct sockaddr_in from;
	socklen_t fl = sizeof from;
	ssize_t n = recvfrom(16, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	all &= ok("udp", n == 8 && memcmp(buf, "datagram", 8) == 0 && from.sin_addr.s_addr == htonl(INADDR_LOOPBACK));

	struct stat st;
	int seals = fcntl(17, F_GET_SEALS);
	all &= ok("memfd", fstat(17, &st) == 0 && st.st_size == 8192 && pread(17, buf, 5, 0) == 5 &&
				   memcmp(buf, "memfd", 5) == 0 && pread(17, buf, 4, 8188) == 4 && memcmp(buf, "tail", 4) == 0 &&
				   seals == (F_SEAL_SHRINK | F_SEAL_GROW));
	all &= ok("unlinked", lseek(18, 0, SEEK_CUR) == 3 && read(18, buf, 10) == 10 && memcmp(buf, "inked file", 10) == 0 &&
				      access(tmpl, F_OK) != 0);

	uint64_t v = 0;
	fcntl(19, F_SETFL, O_NONBLOCK);
	all &= ok("eventfd", read(19, &v, 8) == 8 && v == 7);

	/* The pipe and the socketpair are drained by now: of the three fds epoll watches, only the
	 * timerfd (300 ms, then every 100 ms) becomes ready. */
	struct epoll_event evs[4];
	int got = epoll_wait(22, evs, 4, 2000);
	all &= ok("epoll", got == 1 && evs[0].data.u64 == 2020);
	all &= ok("timerfd", read(20, &v, 8) == 8 && v >= 1);
	struct signalfd_siginfo si;
	all &= ok("posix_timer_signalfd", read(21, &si, sizeof si) == sizeof si && si.ssi_signo == SIGUSR1 && si.ssi_int == 42);

	/* /proc/self/status names the thawed process, not whichever process has the old pid. */
	static char status[4096];
	n = pread(23, status, sizeof status - 1, 0);
	status[n > 0 ? n : 0] = 0;
	char want[64];
	snprintf(want, sizeof want, "\nPid:\t%d\n", (int)getpid());
	all &= ok("proc_self", n > 0 && strstr(status, want) != NULL);

	struct winsize gw;
	unsigned pn, rn;
	all &= ok("terminal", ioctl(26, TIOCGWINSZ, &gw) == 0 && gw.ws_row == 21 && gw.ws_col == 77 &&
				      ioctl(25, TIOCGPTN, &pn) == 0 && ioctl(26, TIOCGPTN, &rn) == 0 && pn == rn &&
				      waitable_fd(26) && read(26, buf, sizeof buf) == 2 && buf[0] == 'q' && write(25, "k\n", 2) == 2 &&
				      waitable_fd(26) && read(26, buf, 2) == 2 && buf[0] == 'k');
	char iname[64];
	snprintf(iname, sizeof iname, "/tmp/obj_all.ino.%d", (int)getpid());
	close(open(iname, O_CREAT | O_WRONLY, 0600));
	unlink(iname);
	static char ibuf[4096] __attribute__((aligned(8)));
	struct inotify_event *ie = (struct inotify_event *)ibuf;
	all &= ok("inotify", waitable_fd(27) && read(27, ibuf, sizeof ibuf) > 0 && ie->wd == 1 && (ie->mask & IN_CREATE) &&
				     strcmp(ie->name, iname + 5) == 0);
	struct timespec zero = {0, 0};
	siginfo_t rsi;
	all &= ok("siginfo", sigtimedwait(&rt, &rsi, &zero) == SIGRTMIN + 3 && rsi.si_code == SI_QUEUE && rsi.si_value.sival_int == 5);

	all &= ok("pidfd", syscall(SYS_pidfd_send_signal, 28, 0, NULL, 0) == 0);
	all &= ok("tcp_pair", read(29, buf, sizeof buf) == 6 && memcmp(buf, "to-cli", 6) == 0 && read(30, buf, sizeof buf) == 6 &&
				      memcmp(buf, "to-acc", 6) == 0 && write(29, "y", 1) == 1 && read(30, buf, 1) == 1 && buf[0] == 'y');
	struct shmid_ds sds;
	all &= ok("sysv_shm", memcmp(shm, "shm!", 4) == 0 && shmctl(shmid, IPC_STAT, &sds) == 0 && sds.shm_segsz == 4096);
	all &= ok("sysv_sem", semctl(semid, 0, GETVAL) == 3);
	memset(&msg, 0, sizeof msg);
	all &= ok("sysv_msg", msgrcv(msqid, &msg, sizeof msg.text, 0, IPC_NOWAIT) == 4 && msg.type == 7 && strcmp(msg.text, "msg") == 0);
	mode_t old = umask(022);
	all &= ok("umask", old == 027);
	pid_t child = fork();
	if (child == 0)
		_exit(df[0] == 'd' ? 0 : 1); /* faults if the page was copied: it must not be */
	int cst = 0;
	all &= ok("dontfork", child > 0 && waitpid(child, &cst, 0) == child && WIFSIGNALED(cst) && WTERMSIG(cst) == SIGSEGV);
	struct stat na, nb; /* fd 31 names the (thawing) process's network namespace */
	all &= ok("nsfs", fstat(31, &na) == 0 && stat("/proc/self/ns/net", &nb) == 0 && na.st_ino == nb.st_ino && na.st_dev == nb.st_dev);
	all &= ok("dgram_pair", recv(32, buf, sizeof buf, MSG_DONTWAIT) == 3 && memcmp(buf, "one", 3) == 0 &&
					recv(32, buf, sizeof buf, MSG_DONTWAIT) == 6 && memcmp(buf, "second", 6) == 0 &&
					write(32, "r", 1) == 1 && recv(33, buf, sizeof buf, MSG_DONTWAIT) == 1);
	all &= ok("removed_dir_file", lseek(34, 0, SEEK_CUR) == 2 && read(34, buf, 14) == 14 && memcmp(buf, " a removed dir", 14) == 0 &&
					      fstat(34, &st) == 0 && st.st_size == 16);
	int nt = -1, nd = -1;
	socklen_t nl = sizeof nt;
	all &= ok("netlink_stub", getsockopt(35, SOL_SOCKET, SO_TYPE, &nt, &nl) == 0 && nt == SOCK_RAW &&
					  getsockopt(35, SOL_SOCKET, SO_DOMAIN, &nd, &nl) == 0 && nd == AF_NETLINK);
	printf("all=%d\n", all);
	return all ? 0 : 1;
}
