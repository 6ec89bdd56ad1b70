/* thaw_bad: a C thawer. It calls sys_checkpoint(CKPT_THAW, fd, -1, 1) on an image that must be
 * refused, and shows that the caller keeps running afterwards.
 *
 * usage: thaw_bad IMAGE [dirty]     (IMAGE "-" thaws from stdin, e.g. a pipe)
 *
 * With "dirty" the thawer first leaves state that must not leak into a thawed program: a pending
 * (blocked) SIGHUP and an armed ITIMER_VIRTUAL (both would kill a program that does not expect
 * them; the thawed test guest also checks with getitimer that it has no ITIMER_VIRTUAL). Its
 * first expiry is 10 s away: with 10 ms, the thawer itself was killed by SIGVTALRM before it
 * reached sys_checkpoint on ptrace under load (user time is sampled per 10 ms tick there), and
 * TestThawRoundtrip/ptrace/dirty_thawer failed with exit 154 (2026-12-03).
 *
 * If the thaw fails it prints "thaw=<result> errno=<symbolic name>" and then "alive", and exits 0. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "guest.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE|-\n", argv[0]);
		return 2;
	}
	int fd = strcmp(argv[1], "-") == 0 ? 0 : open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror("open");
		return 2;
	}
	if (argc > 2 && strcmp(argv[2], "dirty") == 0) {
		sigset_t hup;
		sigemptyset(&hup);
		sigaddset(&hup, SIGHUP);
		struct itimerval itv = {.it_value = {10, 0}, .it_interval = {0, 10000}};
		if (sigprocmask(SIG_BLOCK, &hup, NULL) != 0 || raise(SIGHUP) != 0 || setitimer(ITIMER_VIRTUAL, &itv, NULL) != 0) {
			perror("dirty");
			return 2;
		}
	}
	volatile long canary = 0x5eed;
	long r = sys_checkpoint(CKPT_THAW, fd, -1, 1);
	printf("thaw=%ld errno=%s\n", r, errname(r < 0 ? errno : 0));
	printf("alive canary=%lx\n", canary);
	return 0;
}
