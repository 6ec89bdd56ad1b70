/* obj_tty: pseudo-terminals through a freeze (issue 8 item 6, docs/notes-thaw.md "Terminals").
 *
 * usage: obj_tty IMAGE
 *   Leads its session; opens /dev/ptmx (fd 10) and its replica (fd 11) without O_NOCTTY, so the
 *   replica becomes its controlling terminal, and /dev/tty (fd 12); sets custom termios (raw,
 *   VMIN 3, VTIME 7, VINTR ^X, 19200 baud), a window size of 101x33 (640x480 pixels) and
 *   packet mode on the master; freezes and kills itself. Prints "pty=/dev/pts/N" and
 *   "r=<result> errno=<n>"; after a thaw it checks the pair and prints
 *   "tty pair=1 termios=1 winsize=1 packet=1 ctty=1 fg=1 devtty=1 data=1" (1 = as before the
 *   freeze), exit 0 if all are 1.
 *
 * usage: obj_tty -stdio IMAGE
 *   The controlling replica is also fd 0. After a thaw in a new sandbox (whose thawer has no
 *   controlling terminal) the pair on fds 10/11 is rebuilt but the controlling terminal is not
 *   taken from the thawer's: prints "stdio pair=1 thawer_ctty_kept=1".
 *
 * usage: obj_tty -attach IMAGE RUNSC_CKPT
 *   Same sandbox, the master outside the image: the parent opens the master, sets the settings
 *   and keeps the master; a child leads a new session, opens the replica (fd 11, controlling
 *   terminal) and /dev/tty (fd 12), freezes and kills itself. The parent then changes the window
 *   size to 120x40 (a rebuilt pair would have the image's 101x33) and runs
 *   `RUNSC_CKPT checkpt -r IMAGE` in a child. The thawed child checks it is on the parent's
 *   terminal (same index, the new window size, data both ways through the parent's master) and is
 *   its controlling terminal. Prints "attach pair=1 winsize=1 ctty=1 fg=1 devtty=1 data=1 termios=1";
 *   exits with the thawed child's status.
 *
 * usage: obj_tty -queued IMAGE
 *   Four pairs with bytes queued at the freeze, none read yet (docs/notes-thaw.md "Terminals"):
 *   A (fds 10/11, default termios: canonical, echo, ICRNL, ONLCR): the replica wrote "out1\n",
 *     the master "line1\rparti" (a line, processed to "line1\n" and echoed, then unprocessed
 *     bytes waiting behind it); the master must read "out1\r\nline1\r\n", the replica "line1\n",
 *     then, once the master adds "al\n", "partial\n" (the waiting bytes processed after the thaw);
 *   B (13/14, canonical, no echo): the master wrote "abc", an unterminated line: not readable
 *     (FIONREAD 0) until the master adds "def\n", then "abcdef\n";
 *   C (15/16, canonical, no echo): the master wrote "xyz", ^D, "tail": the replica reads "xyz"
 *     (a line ended by end of file), then "tail\n" once the master adds "\n";
 *   D (17/18, raw): the master wrote 5000 bytes (more than a read buffer holds: the rest waits):
 *     the replica reads all 5000 in order.
 *   Prints "queued out=1 line=1 partial=1 unterminated=1 eof=1 raw=1"; exit 0 if all are 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "guest.h"

static struct termios want;
static unsigned ptn; /* the replica's index at the freeze */

/* lead_session makes the process lead a session (it already does as a sandbox's first process). */
static void lead_session(void)
{
	if (setsid() < 0 && getsid(0) != getpid()) {
		perror("setsid");
		exit(2);
	}
}

static void custom_termios(int fd)
{
	struct termios tio;
	if (tcgetattr(fd, &tio) != 0) {
		perror("tcgetattr");
		exit(2);
	}
	cfmakeraw(&tio);
	tio.c_cc[VMIN] = 3;
	tio.c_cc[VTIME] = 7;
	tio.c_cc[VINTR] = 0x18;
	cfsetspeed(&tio, B19200);
	if (tcsetattr(fd, TCSANOW, &tio) != 0 || tcgetattr(fd, &want) != 0) {
		perror("tcsetattr");
		exit(2);
	}
}

static void set_winsize(int fd, unsigned short rows, unsigned short cols)
{
	struct winsize ws = {.ws_row = rows, .ws_col = cols, .ws_xpixel = 640, .ws_ypixel = 480};
	if (ioctl(fd, TIOCSWINSZ, &ws) != 0) {
		perror("TIOCSWINSZ");
		exit(2);
	}
}

static int same_termios(int fd)
{
	struct termios got;
	if (tcgetattr(fd, &got) != 0)
		return 0;
	return got.c_iflag == want.c_iflag && got.c_oflag == want.c_oflag && got.c_cflag == want.c_cflag &&
	       got.c_lflag == want.c_lflag && memcmp(got.c_cc, want.c_cc, sizeof got.c_cc) == 0 &&
	       cfgetispeed(&got) == cfgetispeed(&want) && cfgetospeed(&got) == B19200;
}

static int winsize_is(int fd, unsigned short rows, unsigned short cols)
{
	struct winsize ws;
	return ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row == rows && ws.ws_col == cols && ws.ws_xpixel == 640 &&
	       ws.ws_ypixel == 480;
}

static int index_is(int fd, unsigned n)
{
	unsigned got;
	return isatty(fd) && ioctl(fd, TIOCGPTN, &got) == 0 && got == n;
}

/* read_exact reads n bytes from fd, waiting at most 20 s for each chunk (a broken pair fails
 * instead of hanging the test). */
static int read_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 20000) != 1)
			return 0;
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			return 0;
		got += r;
	}
	return 1;
}

/* ctty checks the controlling terminal: we lead our session and /dev/tty opens that terminal (gVisor
 * has no TIOCGSID), our group is the foreground one, and fd 12 (/dev/tty at the freeze) is on it. */
static void ctty(int *c, int *fg, int *devtty)
{
	int t = open("/dev/tty", O_RDWR | O_NOCTTY);
	*c = getsid(0) == getpid() && t >= 0 && index_is(t, ptn);
	*fg = tcgetpgrp(11) == getpgrp();
	*devtty = index_is(12, ptn);
	if (t >= 0)
		close(t);
}

static long freeze(const char *image)
{
	int fd = open(image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	long r = freeze_fd_and_die(fd);
	close(fd);
	return r;
}

/* open_ptmx opens a new pty master (O_NOCTTY) and unlocks its replica; the guest exits with
 * status 2 if it cannot. */
static int open_ptmx(void)
{
	int m = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
		perror("ptmx");
		exit(2);
	}
	return m;
}

static int single(const char *image)
{
	lead_session();
	int m = open_ptmx();
	char *name = ptsname(m);
	int s = name ? open(name, O_RDWR) : -1; /* no O_NOCTTY: becomes the controlling terminal */
	if (s < 0 || dup2(m, 10) != 10 || dup2(s, 11) != 11 || ioctl(11, TIOCGPTN, &ptn) != 0) {
		perror("pts");
		return 2;
	}
	close(m);
	close(s);
	int t = open("/dev/tty", O_RDWR);
	if (t < 0 || dup2(t, 12) != 12) {
		perror("/dev/tty");
		return 2;
	}
	close(t);
	custom_termios(11);
	set_winsize(10, 33, 101);
	int one = 1;
	if (ioctl(10, TIOCPKT, &one) != 0) {
		perror("TIOCPKT");
		return 2;
	}
	int c, fg, devtty;
	ctty(&c, &fg, &devtty);
	if (!c || !fg || !devtty || !same_termios(11) || !winsize_is(11, 33, 101)) {
		fprintf(stderr, "before the freeze: ctty=%d fg=%d devtty=%d or settings not as set\n", c, fg, devtty);
		return 2;
	}
	printf("pty=%s\n", name);
	fflush(stdout);
	if (freeze(image) < 0)
		return 1;

	unsigned n;
	int pair = isatty(10) && ioctl(10, TIOCGPTN, &n) == 0 && index_is(11, n);
	ptn = pair ? n : ~0u;
	int termios = same_termios(11) && same_termios(10);
	int winsize = winsize_is(11, 33, 101);
	int pkt = -1;
	int packet = ioctl(10, TIOCGPKT, &pkt) == 0 && pkt == 1;
	ctty(&c, &fg, &devtty);
	/* Data both ways: the replica's output reaches the master (packet mode: a TIOCPKT_DATA byte
	 * first), the master's input reaches the replica (raw, VMIN 3). */
	char buf[8] = {0};
	int data = write(11, "ping", 4) == 4 && read_exact(10, buf, 5) && buf[0] == TIOCPKT_DATA &&
		   memcmp(buf + 1, "ping", 4) == 0;
	data = data && write(10, "abc", 3) == 3 && read_exact(11, buf, 3) && memcmp(buf, "abc", 3) == 0;
	printf("tty pair=%d termios=%d winsize=%d packet=%d ctty=%d fg=%d devtty=%d data=%d\n", pair, termios,
	       winsize, packet, c, fg, devtty, data);
	return pair && termios && winsize && packet && c && fg && devtty && data ? 0 : 1;
}

static int attach(const char *image, const char *runsc)
{
	int m = open_ptmx();
	if (ioctl(m, TIOCGPTN, &ptn) != 0) {
		perror("TIOCGPTN");
		return 2;
	}
	char *name = ptsname(m);
	custom_termios(m);
	set_winsize(m, 33, 101);
	printf("pty=%s\n", name);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		close(m);
		lead_session();
		int s = open(name, O_RDWR);
		int t = s >= 0 ? open("/dev/tty", O_RDWR) : -1;
		if (t < 0 || dup2(s, 11) != 11 || dup2(t, 12) != 12) {
			perror("replica");
			_exit(2);
		}
		close(s);
		close(t);
		int cc, fg, devtty;
		ctty(&cc, &fg, &devtty);
		if (!cc || !fg || !devtty) {
			fprintf(stderr, "before the freeze: ctty=%d fg=%d devtty=%d\n", cc, fg, devtty);
			_exit(2);
		}
		if (freeze(image) < 0)
			_exit(1);
		/* Thawed, by a child of the parent (not a session leader: the thaw makes it one). */
		int pair = index_is(11, ptn);
		int winsize = winsize_is(11, 40, 120); /* the parent's change: the same terminal */
		int termios = same_termios(11);
		ctty(&cc, &fg, &devtty);
		char buf[4] = {0};
		int data = write(11, "ready", 5) == 5 && read_exact(11, buf, 3) && memcmp(buf, "xyz", 3) == 0;
		printf("attach pair=%d winsize=%d ctty=%d fg=%d devtty=%d data=%d termios=%d\n", pair, winsize, cc, fg,
		       devtty, data, termios);
		fflush(stdout);
		_exit(pair && winsize && cc && fg && devtty && data && termios ? 0 : 1);
	}
	int st;
	if (waitpid(c, &st, 0) != c || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
		fprintf(stderr, "frozen child: status %#x\n", st);
		return 2;
	}
	set_winsize(m, 40, 120);
	pid_t d = fork();
	if (d == 0) {
		execl(runsc, "runsc-ckpt", "checkpt", "-r", image, (char *)NULL);
		perror("exec");
		_exit(127);
	}
	/* Until the thawed child opens the replica the master reports a hangup (no replica): retry,
	 * for at most 20 s. */
	char buf[8] = {0};
	size_t got = 0;
	for (int i = 0; i < 2000 && got < 5; i++) {
		struct pollfd pfd = {.fd = m, .events = POLLIN};
		ssize_t r = poll(&pfd, 1, 10) == 1 && (pfd.revents & POLLIN) ? read(m, buf + got, 5 - got) : 0;
		if (r > 0)
			got += r;
		else
			usleep(10000);
	}
	if (got != 5 || memcmp(buf, "ready", 5) != 0 || write(m, "xyz", 3) != 3)
		fprintf(stderr, "parent: no \"ready\" from the thawed child on the master\n");
	if (waitpid(d, &st, 0) != d) {
		perror("waitpid");
		return 2;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* stdio: the controlling replica is also the program's stdin (fd 0). A thaw keeps the thawer's
 * fds 0-2, so the thawer's controlling terminal must stay: none in a new sandbox. */
static int stdio(const char *image)
{
	lead_session();
	int m = open_ptmx();
	int s = open(ptsname(m), O_RDWR);
	if (s < 0 || dup2(m, 10) != 10 || dup2(s, 11) != 11 || dup2(s, 0) != 0 || ioctl(11, TIOCGPTN, &ptn) != 0) {
		perror("pts");
		return 2;
	}
	close(m);
	close(s);
	int t = open("/dev/tty", O_RDWR | O_NOCTTY);
	if (t < 0) {
		perror("/dev/tty before the freeze");
		return 2;
	}
	close(t);
	if (freeze(image) < 0)
		return 1;
	unsigned n;
	int pair = isatty(10) && ioctl(10, TIOCGPTN, &n) == 0 && index_is(11, n);
	t = open("/dev/tty", O_RDWR | O_NOCTTY);
	int kept = t < 0 && !isatty(0);
	printf("stdio pair=%d thawer_ctty_kept=%d\n", pair, kept);
	return pair && kept ? 0 : 1;
}

/* open_pair opens a pty pair at fds m and s (no controlling terminal). */
static void open_pair(int m, int s)
{
	int fm = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (fm < 0 || grantpt(fm) != 0 || unlockpt(fm) != 0) {
		perror("ptmx");
		exit(2);
	}
	int fs = open(ptsname(fm), O_RDWR | O_NOCTTY);
	if (fs < 0 || dup2(fm, m) != m || dup2(fs, s) != s) {
		perror("pts");
		exit(2);
	}
	close(fm);
	close(fs);
}

static void lflag_off(int fd, tcflag_t off)
{
	struct termios tio;
	if (tcgetattr(fd, &tio) != 0) {
		perror("tcgetattr");
		exit(2);
	}
	tio.c_lflag &= ~off;
	if (tcsetattr(fd, TCSANOW, &tio) != 0) {
		perror("tcsetattr");
		exit(2);
	}
}

static void put(int fd, const void *b, size_t n)
{
	if (write(fd, b, n) != (ssize_t)n) {
		perror("write");
		exit(2);
	}
}

/* read_is reads one read(2)'s worth from a canonical replica (waiting at most 20 s) and
 * compares it with want. */
static int read_is(int fd, const char *want)
{
	char buf[64];
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	if (poll(&pfd, 1, 20000) != 1)
		return 0;
	ssize_t r = read(fd, buf, sizeof buf);
	if (r != (ssize_t)strlen(want) || memcmp(buf, want, r) != 0) {
		fprintf(stderr, "read %zd bytes \"%.*s\", want \"%s\"\n", r, r > 0 ? (int)r : 0, buf, want);
		return 0;
	}
	return 1;
}

static int inq(int fd)
{
	int n = -1;
	return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

static int queued(const char *image)
{
	static char big[5000], got[5000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = 'a' + i % 23;
	open_pair(10, 11);
	open_pair(13, 14);
	open_pair(15, 16);
	open_pair(17, 18);
	lflag_off(14, ECHO);
	lflag_off(16, ECHO);
	struct termios raw;
	if (tcgetattr(18, &raw) != 0)
		return 2;
	cfmakeraw(&raw);
	if (tcsetattr(18, TCSANOW, &raw) != 0)
		return 2;
	put(11, "out1\n", 5);
	put(10, "line1\rparti", 11);
	put(13, "abc", 3);
	put(15, "xyz\004tail", 8);
	put(17, big, sizeof big);
	if (inq(14) != 0 || inq(16) != 3) {
		fprintf(stderr, "before the freeze: FIONREAD %d %d\n", inq(14), inq(16));
		return 2;
	}
	if (freeze(image) < 0)
		return 1;

	char buf[16] = {0};
	int out = read_exact(10, buf, 13) && memcmp(buf, "out1\r\nline1\r\n", 13) == 0;
	int line = read_is(11, "line1\n");
	put(10, "al\n", 3);
	int partial = read_is(11, "partial\n");
	int unterminated = inq(14) == 0;
	put(13, "def\n", 4);
	unterminated = unterminated && read_is(14, "abcdef\n");
	int eof = read_is(16, "xyz");
	put(15, "\n", 1);
	eof = eof && read_is(16, "tail\n");
	int rawok = read_exact(18, got, sizeof got) && memcmp(got, big, sizeof big) == 0;
	printf("queued out=%d line=%d partial=%d unterminated=%d eof=%d raw=%d\n", out, line, partial, unterminated, eof,
	       rawok);
	return out && line && partial && unterminated && eof && rawok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 2)
		return single(argv[1]);
	if (argc == 3 && strcmp(argv[1], "-stdio") == 0)
		return stdio(argv[2]);
	if (argc == 3 && strcmp(argv[1], "-queued") == 0)
		return queued(argv[2]);
	if (argc == 4 && strcmp(argv[1], "-attach") == 0)
		return attach(argv[2], argv[3]);
	fprintf(stderr, "usage: %s IMAGE | -stdio IMAGE | -queued IMAGE | -attach IMAGE RUNSC_CKPT\n", argv[0]);
	return 2;
}
