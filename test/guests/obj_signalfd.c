/* obj_signalfd: signalfds through a freeze and a thaw.
 *
 * usage: obj_signalfd IMAGE
 *
 * SIGUSR1, SIGUSR2 and SIGHUP are blocked. Fds: 10 signalfd for {SIGUSR1, SIGUSR2} (SFD_NONBLOCK),
 * with SIGUSR1 pending at the freeze; 11 signalfd for {SIGHUP}.
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself with SIGKILL.
 * After a thaw it prints "pending=.. mask=.. other=.. flags=.." (1 = as expected) and exits 0 if
 * all are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "guest.h"

static int next(int fd)
{
	struct signalfd_siginfo si;
	return read(fd, &si, sizeof si) == sizeof si ? (int)si.ssi_signo : -errno;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	sigset_t usr, hup, all;
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigaddset(&usr, SIGUSR2);
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	all = usr;
	sigaddset(&all, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &all, NULL) != 0)
		return 2;
	at(signalfd(-1, &usr, SFD_NONBLOCK), 10);
	at(signalfd(-1, &hup, 0), 11);
	kill(getpid(), SIGUSR1);

	freeze_and_die(argv[1]);

	int pending = next(10) == SIGUSR1 && next(10) == -EAGAIN;
	int mask = kill(getpid(), SIGUSR2) == 0 && next(10) == SIGUSR2;
	/* 11 (blocking) has only SIGHUP in its mask: it reads SIGHUP, never SIGUSR1. */
	int other = kill(getpid(), SIGUSR1) == 0 && kill(getpid(), SIGHUP) == 0 && next(11) == SIGHUP && next(10) == SIGUSR1;
	int flags = (fcntl(10, F_GETFL) & O_NONBLOCK) && !(fcntl(11, F_GETFL) & O_NONBLOCK);
	printf("pending=%d mask=%d other=%d flags=%d\n", pending, mask, other, flags);
	return pending && mask && other && flags ? 0 : 1;
}
