// tree_pty LOG: a shell's job in the foreground of a pty across a container restore, for
// TestTreePtyForegroundOCI. The container's init opens /dev/ptmx and forks a session leader
// that makes the replica its controlling terminal and stdio and runs busybox `sh -i`; the init
// writes "sleep 1000" and a newline to the master and waits until the sleep's process group is in
// the foreground (found in /proc: the shell's child running sleep in a group of its own), then
// prints "ready". One pty, four processes: the
// master in the init, the replica in the shell, the sleep, and a background job of the shell
// ("tree_pty LOG probe", started before the sleep; the init waits for its "waits" line) that on
// SIGUSR1 opens /dev/tty and logs whether it could (it needs its controlling terminal, which the restore must give it too).
// After the restore, on SIGUSR1 the init writes ^C (\x03) to the master and waits until the sleep
// is gone (SIGINT goes to the foreground group: the sleep's, if it was restored), then has the
// shell print its terminal's size (33 rows, 99 columns, set on the master before the checkpoint)
// and echo something, and reads the answer (the shell took the foreground back); it logs "parent ..."
// lines ending in "ok" or what was seen.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tree_log.h"

static int master;
static pid_t shell, job;
static char out[1 << 16]; /* what the master has read since the last reset */
static size_t outn;

/* drain reads what the master has to read (at most ms milliseconds of waiting for the first byte)
 * into out. */
static void drain(int ms)
{
	struct pollfd p = {.fd = master, .events = POLLIN};
	while (poll(&p, 1, ms) == 1) {
		char buf[512];
		ssize_t n = read(master, buf, sizeof buf);
		if (n <= 0)
			break;
		size_t k = (size_t)n < sizeof out - 1 - outn ? (size_t)n : sizeof out - 1 - outn;
		memcpy(out + outn, buf, k);
		outn += k;
		out[outn] = 0;
		ms = 0;
	}
}

/* stat_of reads pid's ppid and pgid from /proc/PID/stat and whether its comm is "sleep". */
static int stat_of(pid_t pid, pid_t *ppid, pid_t *pgid, int *sleeping)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *e = strrchr(buf, ')');
	char state;
	if (!e || sscanf(e + 1, " %c %d %d", &state, ppid, pgid) != 3)
		return 0;
	*sleeping = strstr(buf, "(sleep)") != NULL;
	return 1;
}

/* until waits (30 s at most, reading the master meanwhile) until cond() holds. */
static int until(int (*cond)(void))
{
	for (int i = 0; i < 3000; i++) {
		if (cond())
			return 1;
		drain(10);
	}
	return cond();
}


/* job_started finds the shell's child running sleep in a process group of its own (ash puts a
 * foreground job in its own group and gives it the terminal before it execs the command). */
static int job_started(void)
{
	for (pid_t pid = shell + 1; pid < shell + 64; pid++) {
		pid_t ppid, pgid;
		int sleeping;
		if (stat_of(pid, &ppid, &pgid, &sleeping) && ppid == shell && sleeping && pgid == pid) {
			job = pid;
			return 1;
		}
	}
	return 0;
}

static int job_gone(void)
{
	return kill(job, 0) != 0 && errno == ESRCH;
}

static const char *log_path;

/* probe_waits reports whether the probe has logged that it waits (its handler is installed). */
static int probe_waits(void)
{
	char buf[4096] = "";
	FILE *f = fopen(log_path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, "probe waits") != NULL;
}

static int answered(void)
{
	return strstr(out, "alive-42") != NULL;
}

/* probe is the background job (tree_pty LOG probe): on SIGUSR1 it opens /dev/tty, which needs a
 * controlling terminal, and logs whether it could. */
static _Noreturn void probe(const char *log)
{
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	if (!(logf_ = fopen(log, "a")))
		die("log");
	logline("probe", "waits for SIGUSR1", 1, "");
	waitusr1();
	char seen[64];
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
	snprintf(seen, sizeof seen, "errno %d", errno);
	logline("probe", "opens its controlling terminal /dev/tty", fd >= 0, seen);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[2], "probe") == 0)
		probe(argv[1]);
	tree_log_start(argc, argv, "tree_pty");
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
		die("ptmx");
	struct winsize ws = {.ws_row = 33, .ws_col = 99};
	if (ioctl(master, TIOCSWINSZ, &ws) != 0)
		die("TIOCSWINSZ");
	char *name = ptsname(master);
	if (!name)
		die("ptsname");
	shell = fork();
	if (shell < 0)
		die("fork");
	if (shell == 0) {
		close(master);
		if (setsid() < 0)
			die("setsid");
		int s = open(name, O_RDWR);
		if (s < 0 || ioctl(s, TIOCSCTTY, 0) != 0)
			die("replica");
		dup2(s, 0);
		dup2(s, 1);
		dup2(s, 2);
		if (s > 2)
			close(s);
		execl("/bin/busybox", "sh", "-i", (char *)NULL);
		_exit(127);
	}
	/* A background job of the session (it must keep the controlling terminal through the
	 * restore), then the foreground job. */
	char cmd[1024];
	int n = snprintf(cmd, sizeof cmd, "%s %s probe & sleep 1000\n", argv[0], argv[1]);
	if (n >= (int)sizeof cmd || write(master, cmd, n) != n)
		die("write");
	log_path = argv[1];
	if (!until(probe_waits)) {
		fprintf(stderr, "the background job never started:\n%s\n", out);
		return 1;
	}
	if (!until(job_started)) {
		fprintf(stderr, "the job never started:\n%s\n", out);
		return 1;
	}
	drain(0);
	printf("ready\n");
	waitusr1();

	/* The terminal's foreground group cannot be read from here (gVisor answers TIOCGPGRP only to
	 * a process whose controlling terminal it is): ^C ending the job is what shows it, since the
	 * line discipline sends SIGINT to the foreground group, and an interactive shell ignores it. */
	logline("parent", "the job is alive", kill(job, 0) == 0, "no job");
	drain(0);
	outn = 0;
	out[0] = 0;
	if (write(master, "\x03", 1) != 1)
		die("write ^C");
	logline("parent", "^C ends the job", until(job_gone), "the job is still there");
	static const char echo[] = "stty size; echo alive-$((6*7))\n";
	if (write(master, echo, sizeof echo - 1) != sizeof echo - 1)
		die("write echo");
	logline("parent", "the shell answers", until(answered), "no answer");
	/* The window size set on the master before the checkpoint, seen from the shell's replica:
	 * one pair for all, with the terminal's settings. */
	logline("parent", "the shell's terminal has the window size", strstr(out, "\n33 99") != NULL, "another size");
	logline("parent", "done", 1, "");
	printf("parent done\n");
	for (;;) {
		drain(-1);
	}
}
