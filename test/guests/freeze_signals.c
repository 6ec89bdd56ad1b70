/* freeze_signals: sets up signal state of every kind, then freezes itself into IMAGE:
 * SIGUSR1 handled (SA_RESTART|SA_ONSTACK, handler mask {SIGUSR2}), SIGPIPE ignored, SIGUSR2
 * blocked and pending, a 64 KiB alternate stack, ITIMER_REAL 100 s with a 50 s interval,
 * parent-death signal SIGHUP. Prints "handler=<addr> altstack=<addr> freeze=<ret> errno=<n>".
 *
 * usage: freeze_signals IMAGE */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../include/ckpt.h"

static void on_usr1(int sig) { (void)sig; }

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGUSR2);

	static char altstack[64 << 10];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
	sigaltstack(&ss, NULL);

	struct itimerval it = {.it_interval = {50, 0}, .it_value = {100, 0}};
	setitimer(ITIMER_REAL, &it, NULL);
	prctl(PR_SET_PDEATHSIG, SIGHUP);

	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open image");
		return 1;
	}
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	printf("handler=%#lx altstack=%#lx freeze=%ld errno=%d\n", (unsigned long)on_usr1, (unsigned long)altstack, r, r < 0 ? errno : 0);
	return r == 0 ? 0 : 1;
}
