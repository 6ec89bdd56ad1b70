/* tree_freeze_msgsock: a tree freeze into a datagram or seqpacket unix socket (docs/fuzzing.md,
 * finding 5). Such a socket takes a message only whole: once the first chunks of the stream
 * have filled most of its buffer, the next write would block while the socket still reports
 * itself writable, since some room is free. The freezer must then wait for the reader (the
 * fuzzer found it spinning on the CPU for ever instead, deaf to SIGKILL).
 *
 * A message larger than the buffer fails with EMSGSIZE; the freezer must then split its writes.
 *
 * For each of SOCK_DGRAM and SOCK_SEQPACKET, with the default buffer (208 KiB, less than the
 * stream's largest writes) and with SO_SNDBUF 512 KiB ("-1m": gVisor doubles it into a 1 MiB
 * queue): a child with 1008 KiB of memory in one mapping counts in a loop; a freezer process
 * calls CKPT_FREEZE_TREE of that child into one end of a socket pair. With the 1 MiB queue the
 * mapping's contents go out as one 1008 KiB write once less than a quarter of the queue is
 * used by what came before (about 90 KiB): too big for the room left, while gVisor reports a
 * queue less than a quarter full writable. That is the spin.
 * - Nobody reads the other end: after 300 ms the freezer is still in the call ("blocked"); it
 *   is sent SIGKILL and must be gone within 10 s ("killed"), and the child counts on
 *   ("resumed").
 * - A reader drains the other end: the freeze returns 0 ("drained") and the reader got more
 *   bytes than the bulk ("bytes").
 * - The same with CKPT_FREEZE of the child alone ("single"): the single-process image writer.
 * Prints "<case> blocked=1", "<case> killed=1", "<case> resumed=1", "<case> drained=1",
 * "<case> bytes=1", "<case> single=1" for each of dgram, dgram-1m, seqpacket, seqpacket-1m,
 * then "ok"; a failed check prints =0 and the guest exits 1. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "guest.h"

/* BULK_KIB is the size of the child's mapping: a little less than the 1 MiB queue. */
#define BULK_KIB 1008

/* counter is shared with the counting child. */
static volatile unsigned long *counter;

/* start_counter starts the child and returns once its mapping is filled. */
static pid_t start_counter(void)
{
	int ready[2];
	if (pipe(ready) != 0) {
		perror("pipe");
		exit(2);
	}
	pid_t p = fork_dying_with_parent();
	if (p != 0) {
		char c;
		close(ready[1]);
		if (read_full(ready[0], &c, 1) != 1) {
			printf("FAIL the child did not start\n");
			exit(1);
		}
		close(ready[0]);
		return p;
	}
	close(ready[0]);
	unsigned char *b = mmap(NULL, BULK_KIB << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		_exit(2);
	for (size_t i = 0; i < BULK_KIB << 10; i += 64)
		b[i] = 1;
	if (write(ready[1], "r", 1) != 1)
		_exit(2);
	close(ready[1]);
	for (;;) {
		(*counter)++;
		usleep(100);
	}
}

/* start_freezer forks a process that freezes pid into fd (a tree freeze, or with type
 * CKPT_FREEZE the process alone) and exits 0 if the call returned 0,
 * 10+errno otherwise. */
static pid_t start_freezer(int type, int fd, pid_t pid)
{
	pid_t p = fork_dying_with_parent();
	if (p != 0)
		return p;
	long r = sys_checkpoint(type, fd, pid, 0);
	_exit(r == 0 ? 0 : 10 + errno);
}

/* reaped_within waits up to ms milliseconds for pid to end and reports whether it did; *st gets
 * its status. */
static int reaped_within(pid_t pid, int ms, int *st)
{
	for (int i = 0; i < ms; i++) {
		pid_t r = waitpid(pid, st, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return 0;
		usleep(1000);
	}
	return 0;
}

/* drain reads datagrams from fd until the freezer ends and returns the bytes read. Its buffer is
 * mapped for the call only: a buffer in .bss, filled here, would be in every child forked later,
 * and ahead of the child's mapping in its image it would fill the queue past a quarter, where
 * gVisor no longer calls it writable (and the spin would not be reached). */
static long drain(int fd, pid_t freezer, int *st)
{
	const size_t size = 4 << 20;
	char *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	long total = 0;
	int ended = 0;
	for (int idle = 0; idle < 20000;) {
		ssize_t n = recv(fd, buf, size, MSG_DONTWAIT);
		if (n > 0) {
			total += n;
			idle = 0;
			continue;
		}
		if (waitpid(freezer, st, WNOHANG) == freezer) {
			while ((n = recv(fd, buf, size, MSG_DONTWAIT)) > 0)
				total += n;
			ended = 1;
			break;
		}
		usleep(500);
		idle++;
	}
	munmap(buf, size);
	return ended ? total : -1;
}

/* pair makes a socket pair of type; sndbuf > 0 sets SO_SNDBUF on the writer's end, sv[0]. */
static void pair(int type, int sndbuf, int sv[2])
{
	if (socketpair(AF_UNIX, type, 0, sv) != 0) {
		perror("socketpair");
		exit(2);
	}
	if (sndbuf > 0 && setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0) {
		perror("SO_SNDBUF");
		exit(2);
	}
}

static void one(int type, int sndbuf, const char *name)
{
	char label[64];
	int sv[2], st = 0;

	/* Nobody reads. */
	pair(type, sndbuf, sv);
	pid_t c = start_counter();
	pid_t f = start_freezer(CKPT_FREEZE_TREE, sv[0], c);
	usleep(300000);
	snprintf(label, sizeof label, "%s blocked", name);
	check(label, waitpid(f, &st, WNOHANG) == 0);
	kill(f, SIGKILL);
	snprintf(label, sizeof label, "%s killed", name);
	check(label, reaped_within(f, 10000, &st));
	snprintf(label, sizeof label, "%s resumed", name);
	check(label, counters_advance(counter, 1, 10000));
	close(sv[0]);
	close(sv[1]);

	/* A reader drains it. */
	pair(type, sndbuf, sv);
	f = start_freezer(CKPT_FREEZE_TREE, sv[0], c);
	long got = drain(sv[1], f, &st);
	snprintf(label, sizeof label, "%s drained", name);
	check(label, got >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (got < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		printf("%s: freezer status %#x, %ld bytes read\n", name, st, got);
	snprintf(label, sizeof label, "%s bytes", name);
	check(label, got > (long)BULK_KIB << 10);
	close(sv[0]);
	close(sv[1]);

	/* The single-process freeze, drained: its image writer splits its writes too. */
	pair(type, sndbuf, sv);
	f = start_freezer(CKPT_FREEZE, sv[0], c);
	got = drain(sv[1], f, &st);
	snprintf(label, sizeof label, "%s single", name);
	int single = got > (long)BULK_KIB << 10 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	check(label, single);
	if (!single)
		printf("%s: single freezer status %#x, %ld bytes read\n", name, st, got);
	close(sv[0]);
	close(sv[1]);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counter == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	one(SOCK_DGRAM, 0, "dgram");
	one(SOCK_DGRAM, 512 << 10, "dgram-1m");
	one(SOCK_SEQPACKET, 0, "seqpacket");
	one(SOCK_SEQPACKET, 512 << 10, "seqpacket-1m");
	if (check_fails)
		return 1;
	printf("ok\n");
	return 0;
}
