/* obj_pipe: pipes and FIFOs with their buffered bytes through a freeze and a thaw.
 *
 * usage: obj_pipe IMAGE FIFO       (FIFO: a path where the guest makes a named pipe, e.g. on /tmp)
 *
 * Fds (numbers fixed with dup2):
 *   10 read end, 11 write end (O_NONBLOCK) of one pipe, capacity 128 KiB, 100000 bytes buffered;
 *   12 dup of 10 (one open file description with 10);
 *   13 read end of a pipe whose write end only a child holds, "tail" buffered;
 *   14 write end of a pipe whose read end only a child holds, "lost" buffered;
 *   15 FIFO read end (O_NONBLOCK), 16 FIFO write end, "fifo-data" buffered;
 *   17 read end, 18 write end of a self-pipe; a thread blocks reading 17 across the freeze.
 * The children die with the guest (PR_SET_PDEATHSIG), so after a thaw the peers of 13 and 14 are gone.
 *
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself with SIGKILL.
 * After a thaw it checks every fd and prints
 * "capacity=.. data=.. flags=.. shared=.. connected=.. eof=.. readonly=.. writeonly=.. fifo=.. thread=.."
 * (1 = as expected); exit 0 if all are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest.h"

#define BIG 100000
#define CAPACITY (128 * 1024)

static unsigned char pattern(int i) { return (unsigned char)(i * 7 + 3); }

/* child_holding keeps fd open in a child that dies with its parent; the parent closes it. */
static void child_holding(int fd)
{
	if (fork_dying_with_parent() == 0) {
		for (;;)
			pause();
	}
	close(fd);
}

static volatile int thread_got;
static char thread_bytes[8];

static void *reader(void *arg)
{
	(void)arg;
	char c;
	while (read(17, &c, 1) == 1) {
		thread_bytes[thread_got] = c;
		__sync_fetch_and_add(&thread_got, 1);
		if (c == 'q' || thread_got == (int)sizeof thread_bytes - 1)
			break;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE FIFO\n", argv[0]);
		return 2;
	}
	static unsigned char big[BIG], back[BIG + 1];
	int p[2];

	if (pipe(p) != 0)
		return 2;
	at(p[0], 10);
	at(p[1], 11);
	if (fcntl(10, F_SETPIPE_SZ, CAPACITY) != CAPACITY || fcntl(11, F_SETFL, O_NONBLOCK) != 0) {
		perror("F_SETPIPE_SZ / O_NONBLOCK");
		return 2;
	}
	for (int i = 0; i < BIG; i++)
		big[i] = pattern(i);
	if (write(11, big, BIG) != BIG) {
		perror("filling the pipe");
		return 2;
	}
	at(dup(10), 12);

	if (pipe(p) != 0 || write(p[1], "tail", 4) != 4)
		return 2;
	at(p[0], 13);
	child_holding(p[1]);
	if (pipe(p) != 0 || write(p[1], "lost", 4) != 4)
		return 2;
	at(p[1], 14);
	child_holding(p[0]);

	unlink(argv[2]);
	if (mkfifo(argv[2], 0600) != 0) {
		perror("mkfifo");
		return 2;
	}
	at(open(argv[2], O_RDONLY | O_NONBLOCK), 15);
	at(open(argv[2], O_WRONLY), 16);
	if (write(16, "fifo-data", 9) != 9)
		return 2;

	if (pipe(p) != 0)
		return 2;
	at(p[0], 17);
	at(p[1], 18);
	pthread_t th;
	if (pthread_create(&th, NULL, reader, NULL) != 0 || write(18, "ab", 2) != 2)
		return 2;
	while (thread_got < 2)
		usleep(1000);

	freeze_and_die(argv[1]);
	signal(SIGPIPE, SIG_IGN);

	/* 10/11/12: capacity, all bytes in order, per-end flags, 12 shares 10's description. */
	int queued = -1;
	ioctl(10, FIONREAD, &queued);
	int capacity = fcntl(10, F_GETPIPE_SZ) == CAPACITY && queued == BIG;
	int flags = (fcntl(10, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == O_RDONLY &&
		    (fcntl(11, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == (O_WRONLY | O_NONBLOCK);
	int shared = fcntl(12, F_SETFL, O_NONBLOCK) == 0 && (fcntl(10, F_GETFL) & O_NONBLOCK);
	int data = read_full(12, back, BIG) == BIG && memcmp(back, big, BIG) == 0 &&
		   read(10, back, 1) < 0 && errno == EAGAIN;
	int connected = write(11, "more", 4) == 4 && read(10, back, 8) == 4 && memcmp(back, "more", 4) == 0;
	close(11);
	int eof = read(10, back, 1) == 0;

	/* 13: the bytes, then end-of-file (the child that held the write end is not in the image).
	 * 14: EPIPE (the child that held the read end is not in the image). */
	char buf[32] = {0};
	int readonly = read(13, buf, sizeof buf) == 4 && memcmp(buf, "tail", 4) == 0 && read(13, buf, 1) == 0 &&
		       (fcntl(13, F_GETFL) & O_ACCMODE) == O_RDONLY;
	int writeonly = write(14, "x", 1) < 0 && errno == EPIPE && (fcntl(14, F_GETFL) & O_ACCMODE) == O_WRONLY;

	/* 15/16: the FIFO at its path, its bytes once (not lost, not doubled), still a FIFO pair. */
	struct stat st15, stp;
	memset(buf, 0, sizeof buf);
	int fifo = fstat(15, &st15) == 0 && S_ISFIFO(st15.st_mode) && stat(argv[2], &stp) == 0 &&
		   st15.st_ino == stp.st_ino && st15.st_dev == stp.st_dev &&
		   (fcntl(15, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == (O_RDONLY | O_NONBLOCK) &&
		   (fcntl(16, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == O_WRONLY;
	ssize_t n = read(15, buf, sizeof buf);
	int fifo_data = n == 9 && memcmp(buf, "fifo-data", 9) == 0;
	fifo = fifo && fifo_data && read(15, buf, 1) < 0 && errno == EAGAIN && write(16, "again", 5) == 5 &&
	       read(15, buf, sizeof buf) == 5 && memcmp(buf, "again", 5) == 0;
	if (!fifo_data)
		printf("fifo read %zd bytes: %.*s\n", n, n > 0 ? (int)n : 0, buf);

	/* 17/18: the thread blocked in read(17) across the freeze gets what is written now. */
	int thread = write(18, "cq", 2) == 2 && pthread_join(th, NULL) == 0 && thread_got == 4 &&
		     memcmp(thread_bytes, "abcq", 4) == 0;

	printf("capacity=%d data=%d flags=%d shared=%d connected=%d eof=%d readonly=%d writeonly=%d fifo=%d thread=%d\n",
	       capacity, data, flags, shared, connected, eof, readonly, writeonly, fifo, thread);
	return capacity && data && flags && shared && connected && eof && readonly && writeonly && fifo && thread ? 0 : 1;
}
