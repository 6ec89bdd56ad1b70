/* obj_epoll: epoll instances with their interest lists through a freeze and a thaw.
 *
 * usage: obj_epoll IMAGE
 *
 * Fds (numbers fixed with dup2): 10 read end, 11 write end of a pipe ("x" buffered); 12 eventfd
 * (count 0); 13 epoll A; 14 epoll B (O_NONBLOCK, FD_CLOEXEC); 15 eventfd (count 1); 16 dup of 10; 21 read end
 * of a second pipe ("y" buffered), registered in A while it was fd 20 and then moved to 21.
 * A watches: 10 EPOLLIN data 0x1111000000000010; 16 EPOLLIN|EPOLLRDHUP data 0x16 (the same file
 * as 10, registered under its own number); 11 EPOLLOUT|EPOLLONESHOT data 0x11; 12 EPOLLIN|EPOLLET
 * data 0x12; fd 20 EPOLLIN data 0x20; and the read end of a third pipe ("z" buffered) that only a
 * child holds by now (data 0xdead: dropped, it has no fd in the process); 22, the write end of a
 * pipe (also at fd 2; read end 23), EPOLLOUT data 0x22.
 * B watches A (EPOLLIN, data 0xb) and 15 (EPOLLIN|EPOLLEXCLUSIVE, data 0x15).
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself with SIGKILL.
 * After a thaw it prints "level=.. data64=.. oneshot=.. edge=.. renamed=.. dropped=.. nested=.. exclusive=.. keys=.. flags=.."
 * (1 = as expected) and exits 0 if all are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "guest.h"

static void add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		fprintf(stderr, "epoll_ctl ADD %d: %s\n", fd, strerror(errno));
		_exit(2);
	}
}

/* wait_set returns the data of every event epoll ep reports now, as a bit per known datum. */
enum { D10 = 1, D16 = 2, D11 = 4, D12 = 8, D20 = 16, DEAD = 32, DB = 64, D15 = 128, OTHER = 256, D22 = 512 };
static int wait_set(int ep, uint32_t *ev10)
{
	struct epoll_event evs[16];
	int n = epoll_wait(ep, evs, 16, 0), set = 0;
	for (int i = 0; i < n; i++) {
		switch (evs[i].data.u64) {
		case 0x1111000000000010ULL: set |= D10; if (ev10) *ev10 = evs[i].events; break;
		case 0x16: set |= D16; break;
		case 0x11: set |= D11; break;
		case 0x12: set |= D12; break;
		case 0x20: set |= D20; break;
		case 0xdead: set |= DEAD; break;
		case 0xb: set |= DB; break;
		case 0x15: set |= D15; break;
		case 0x22: set |= D22; break;
		default: set |= OTHER;
		}
	}
	return n < 0 ? -1 : set;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	int p[2];
	if (pipe(p) != 0 || write(p[1], "x", 1) != 1)
		return 2;
	at(p[0], 10);
	at(p[1], 11);
	at(eventfd(0, EFD_NONBLOCK), 12);
	at(epoll_create1(0), 13);
	at(epoll_create1(EPOLL_CLOEXEC), 14);
	fcntl(14, F_SETFL, O_NONBLOCK);
	fcntl(14, F_SETFD, FD_CLOEXEC); /* dup2 dropped EPOLL_CLOEXEC */
	at(eventfd(1, 0), 15);
	at(dup(10), 16);
	if (pipe(p) != 0 || write(p[1], "y", 1) != 1)
		return 2;
	at(p[0], 20);
	close(p[1]);

	add(13, 10, EPOLLIN, 0x1111000000000010ULL);
	add(13, 16, EPOLLIN | EPOLLRDHUP, 0x16);
	add(13, 11, EPOLLOUT | EPOLLONESHOT, 0x11);
	add(13, 12, EPOLLIN | EPOLLET, 0x12);
	add(13, 20, EPOLLIN, 0x20);
	at(dup(20), 21);
	close(20);
	add(14, 13, EPOLLIN, 0xb);
	add(14, 15, EPOLLIN | EPOLLEXCLUSIVE, 0x15);

	/* A file only a child holds: registered, then its fd closed here. */
	if (pipe(p) != 0 || write(p[1], "z", 1) != 1)
		return 2;
	add(13, p[0], EPOLLIN, 0xdead);
	if (fork_dying_with_parent() == 0) {
		for (;;)
			pause();
	}
	close(p[0]);
	close(p[1]);
	/* Before the freeze the dropped interest still fires (the child keeps the file open). */
	int before = wait_set(13, NULL);
	/* That wait fired the one-shot 11: re-arm it so that the image holds an armed one. */
	struct epoll_event rearm = {.events = EPOLLOUT | EPOLLONESHOT, .data.u64 = 0x11};
	if (!(before & DEAD) || epoll_ctl(13, EPOLL_CTL_MOD, 11, &rearm) != 0) {
		fprintf(stderr, "setup: before=%#x\n", before);
		return 2;
	}

	/* A pipe's write end the process has at fd 2 and at fd 22 (read end 23): the image names it
	 * by 22 (the thaw keeps the caller's fds 0-2, so fd 2 would be some other file then). */
	if (pipe(p) != 0)
		return 2;
	at(p[0], 23);
	if (dup2(p[1], 22) != 22)
		return 2;
	at(p[1], 2);
	add(13, 22, EPOLLOUT, 0x22);
	/* (Diagnostics go to that pipe from here on.) */

	freeze_and_die(argv[1]);

	/* First wait: the level-triggered ones (10, 16, 20), the armed one-shot 11; not the dropped
	 * interest, not the edge-triggered eventfd (count 0). */
	uint32_t ev10 = 0;
	int first = wait_set(13, &ev10);
	int level = (first & (D10 | D16 | D20 | D22)) == (D10 | D16 | D20 | D22) && ev10 == EPOLLIN;
	int dropped = !(first & DEAD);
	/* Second wait: level-triggered again, the one-shot not. */
	int second = wait_set(13, NULL);
	int oneshot = (first & D11) && !(second & D11) && (second & D10);
	/* EPOLLET: one report per write, not again while it stays readable. */
	uint64_t one = 1;
	int edge = !(first & D12) && write(12, &one, 8) == 8 && (wait_set(13, NULL) & D12) && !(wait_set(13, NULL) & D12);
	/* The interest on 21 keeps the number it was registered with (20): 21 itself is not registered. */
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x21};
	int renamed = (first & D20) && epoll_ctl(13, EPOLL_CTL_DEL, 21, &ev) < 0 && errno == ENOENT;
	/* The 64-bit data and the event bits came back. */
	int data64 = !(first & OTHER) && !(second & OTHER);
	/* B reports A (which has ready events) and the eventfd 15 (count 1). */
	int nested_set = wait_set(14, NULL);
	int nested = (nested_set & DB) != 0;
	int exclusive = (nested_set & D15) != 0;
	/* The registrations are epoll's keys: adding one again is EEXIST, modifying one works. */
	ev.data.u64 = 0x10;
	int keys = epoll_ctl(13, EPOLL_CTL_ADD, 10, &ev) < 0 && errno == EEXIST && epoll_ctl(13, EPOLL_CTL_MOD, 16, &ev) == 0 &&
		   epoll_ctl(14, EPOLL_CTL_ADD, 13, &ev) < 0 && errno == EEXIST;
	int flags = (fcntl(14, F_GETFL) & O_NONBLOCK) && (fcntl(14, F_GETFD) & FD_CLOEXEC) && !(fcntl(13, F_GETFL) & O_NONBLOCK) &&
		    !(fcntl(13, F_GETFD) & FD_CLOEXEC);

	printf("level=%d data64=%d oneshot=%d edge=%d renamed=%d dropped=%d nested=%d exclusive=%d keys=%d flags=%d\n", level, data64,
	       oneshot, edge, renamed, dropped, nested, exclusive, keys, flags);
	if (!(level && data64 && oneshot && edge && renamed && dropped && nested && exclusive && keys && flags))
		printf("first=%#x second=%#x nested=%#x ev10=%#x\n", first, second, nested_set, ev10);
	return level && data64 && oneshot && edge && renamed && dropped && nested && exclusive && keys && flags ? 0 : 1;
}
