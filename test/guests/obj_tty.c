/* obj_tty: a pseudo-terminal pair through a freeze (issue 8 item 6: not restored, see
 * docs/notes-thaw.md "Terminals").
 *
 * usage: obj_tty IMAGE
 *
 * Opens /dev/ptmx (fd 10) and its replica /dev/pts/N (fd 11), puts the replica in raw mode,
 * freezes, kills itself. Prints "pty=/dev/pts/N" and "r=<result> errno=<n>"; after a thaw
 * "master=.. replica=.." (1 = the fd is the documented placeholder: a pipe read end whose peer is
 * gone, reading EOF, never a reopened terminal); exits 0 if both are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "guest.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	int m = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
		perror("ptmx");
		return 2;
	}
	char *name = ptsname(m);
	int s = name ? open(name, O_RDWR | O_NOCTTY) : -1;
	if (s < 0 || dup2(m, 10) != 10 || dup2(s, 11) != 11) {
		perror("pts");
		return 2;
	}
	struct termios tio;
	tcgetattr(11, &tio);
	cfmakeraw(&tio);
	tcsetattr(11, TCSANOW, &tio);
	printf("pty=%s\n", name);
	freeze_and_die(argv[1]);
	struct stat st;
	char buf[8];
	int master = fstat(10, &st) == 0 && S_ISFIFO(st.st_mode) && !isatty(10) && read(10, buf, sizeof buf) == 0;
	int replica = fstat(11, &st) == 0 && S_ISFIFO(st.st_mode) && !isatty(11) && read(11, buf, sizeof buf) == 0;
	printf("master=%d replica=%d\n", master, replica);
	return master && replica ? 0 : 1;
}
