/* obj_timerfd: timerfds through a freeze and a thaw.
 *
 * usage: obj_timerfd IMAGE
 *
 * Fds: 10 CLOCK_MONOTONIC one-shot armed for 3600 s; 11 CLOCK_MONOTONIC one-shot of 1 ms that
 * expired (1 expiration pending, now disarmed); 12 CLOCK_REALTIME (TFD_NONBLOCK) armed for an
 * absolute time 3600 s ahead with a 5 s interval; 13 CLOCK_MONOTONIC every 20 ms.
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself with SIGKILL.
 * After a thaw it prints "relative=.. pending=.. absolute=.. periodic=.. flags=.." (1 = as
 * expected) and exits 0 if all are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

static int arm(int fd, int flags, time_t sec, long nsec, time_t isec, long insec)
{
	struct itimerspec its = {.it_value = {sec, nsec}, .it_interval = {isec, insec}};
	return timerfd_settime(fd, flags, &its, NULL);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	struct timespec now;
	at(timerfd_create(CLOCK_MONOTONIC, 0), 10);
	at(timerfd_create(CLOCK_MONOTONIC, 0), 11);
	at(timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK), 12);
	at(timerfd_create(CLOCK_MONOTONIC, 0), 13);
	clock_gettime(CLOCK_REALTIME, &now);
	struct pollfd pfd = {.fd = 11, .events = POLLIN};
	if (arm(10, 0, 3600, 0, 0, 0) != 0 || arm(11, 0, 0, 1000000, 0, 0) != 0 || poll(&pfd, 1, -1) != 1 ||
	    arm(12, TFD_TIMER_ABSTIME, now.tv_sec + 3600, 0, 5, 0) != 0 || arm(13, 0, 0, 20000000, 0, 20000000) != 0) {
		perror("arming");
		return 2;
	}

	freeze_and_die(argv[1]);

	struct itimerspec cur;
	uint64_t n = 0;
	/* Relative to the thaw: most of the hour left (monotonic time does not pass while frozen). */
	int relative = timerfd_gettime(10, &cur) == 0 && cur.it_value.tv_sec > 3000 && cur.it_value.tv_sec < 3600 &&
		       cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 0;
	/* The expiration nobody read yet is still there, the timer is disarmed. */
	int pending = timerfd_gettime(11, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0 &&
		      read(11, &n, 8) == 8 && n == 1;
	/* Absolute wall time: the same deadline, the interval kept. */
	clock_gettime(CLOCK_REALTIME, &now);
	int absolute = timerfd_gettime(12, &cur) == 0 && cur.it_interval.tv_sec == 5 && cur.it_value.tv_sec > 3000 &&
		       cur.it_value.tv_sec <= 3600 && read(12, &n, 8) < 0 && errno == EAGAIN;
	/* The periodic timer keeps firing. */
	n = 0;
	int periodic = read(13, &n, 8) == 8 && n >= 1 && read(13, &n, 8) == 8 && n >= 1;
	int flags = (fcntl(12, F_GETFL) & O_NONBLOCK) && !(fcntl(10, F_GETFL) & O_NONBLOCK);
	printf("relative=%d pending=%d absolute=%d periodic=%d flags=%d\n", relative, pending, absolute, periodic, flags);
	return relative && pending && absolute && periodic && flags ? 0 : 1;
}
