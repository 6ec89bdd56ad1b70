/* tree_freeze_race: a tree freeze of a process that is freezing itself (docs/fuzzing.md,
 * finding 4). Process P: its main thread spins in user code, a second thread freezes P into a file.
 *
 * usage: tree_freeze_race stuck    P's freeze writes into a pipe nobody reads, so it stays
 *                                  registered (its threads run on from a snapshot); a child C
 *                                  then tree-freezes P: P's main thread captures itself for C's
 *                                  tree freeze and waits for P's own freeze to end. C is killed:
 *                                  it must go at once (it waited unkillably for that capture),
 *                                  and when the pipe's reader leaves, P's freeze fails with EPIPE
 *                                  and P runs on. Prints "stuck=1", "parked=1", "killed_gone=1",
 *                                  "freeze errno=EPIPE", "released=1", "ok".
 *        tree_freeze_race loop     P's second thread freezes P into /dev/null in a loop while C
 *                                  tree-freezes P into /dev/null in a loop: both must keep
 *                                  completing (a thread asked to stop for P's freeze and to
 *                                  capture itself for C's tree freeze at the same return to user
 *                                  mode waited for P's freeze, which waited for it). Prints
 *                                  "self=1 tree=1" and "ok" once each side completed 100 calls.
 * FAIL lines and exit 1 otherwise. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "guest.h"

struct shared {
	volatile unsigned long spins;  /* P's main thread */
	volatile unsigned long selfs;  /* P's completed self-freezes (loop mode) */
	volatile unsigned long trees;  /* C's completed tree freezes (loop mode) */
	volatile int freeze_done;      /* stuck mode: P's freeze returned */
	volatile long freeze_ret;
	volatile int freeze_errno;
};

static struct shared *sh;
static int freeze_fd;
static int pipe_r = -1; /* stuck mode: the pipe's read end, which only the main process keeps */
static int loop_mode;

static void *self_freezer(void *arg)
{
	(void)arg;
	if (!loop_mode) {
		long r = sys_checkpoint(CKPT_FREEZE, freeze_fd, -1, 0);
		sh->freeze_errno = r < 0 ? errno : 0;
		sh->freeze_ret = r;
		sh->freeze_done = 1;
		return NULL;
	}
	for (;;)
		if (sys_checkpoint(CKPT_FREEZE, freeze_fd, -1, 0) == 0)
			sh->selfs++;
}

static pid_t start_p(void)
{
	pid_t p = fork_dying_with_parent();
	if (p != 0)
		return p;
	if (pipe_r >= 0)
		close(pipe_r);
	fill_bulk(4); /* An image far larger than a pipe's 64 KiB. */
	pthread_t th;
	if (pthread_create(&th, NULL, self_freezer, NULL) != 0)
		_exit(2);
	for (;;)
		for (int i = 0; i < 1000; i++)
			sh->spins++;
}

/* still waits until counter has not moved for a second (up to 60 s) and reports whether it did. */
static int still(volatile unsigned long *counter)
{
	unsigned long last = *counter;
	for (int i = 0, quiet = 0; i < 60000; i++) {
		usleep(1000);
		if (*counter == last) {
			if (++quiet >= 1000)
				return 1;
		} else {
			quiet = 0;
			last = *counter;
		}
	}
	return 0;
}

static int stuck_mode(void)
{
	int p[2];
	if (pipe(p) != 0) {
		perror("pipe");
		return 2;
	}
	freeze_fd = p[1];
	pipe_r = p[0];
	pid_t pp = start_p();
	close(p[1]);
	/* P's freeze is stuck once the pipe is full; P runs on meanwhile (it has a snapshot). */
	int full = 0;
	for (int i = 0; i < 60000 && !full && !sh->freeze_done; i++) {
		int n = 0;
		full = ioctl(p[0], FIONREAD, &n) == 0 && n >= 65536;
		if (!full)
			usleep(1000);
	}
	printf("stuck=%d\n", full && !sh->freeze_done && counters_advance(&sh->spins, 1, 60000));
	pid_t c = fork_dying_with_parent();
	if (c == 0) {
		close(pipe_r);
		int null = open("/dev/null", O_WRONLY);
		long r = sys_checkpoint(CKPT_FREEZE_TREE, null, pp, 0);
		_exit(r == 0 ? 0 : 3);
	}
	/* C's tree freeze makes P's main thread capture itself, which waits for P's freeze. */
	printf("parked=%d\n", still(&sh->spins));
	kill(c, SIGKILL);
	int gone = 0;
	for (int i = 0; i < 30000 && !gone; i++) {
		gone = waitpid(c, NULL, WNOHANG) == c;
		if (!gone)
			usleep(1000);
	}
	printf("killed_gone=%d\n", gone);
	fflush(stdout);
	close(p[0]);
	for (int i = 0; i < 60000 && !sh->freeze_done; i++)
		usleep(1000);
	if (!gone)
		waitpid(c, NULL, 0);
	printf("freeze errno=%s\n", !sh->freeze_done ? "none (still running)" : sh->freeze_errno == EPIPE ? "EPIPE" : strerror(sh->freeze_errno));
	int released = counters_advance(&sh->spins, 1, 60000);
	printf("released=%d\n", released);
	kill(pp, SIGKILL);
	if (!gone || !released || sh->freeze_errno != EPIPE)
		return 1;
	printf("ok\n");
	return 0;
}

static int loop(void)
{
	freeze_fd = open("/dev/null", O_WRONLY);
	pid_t pp = start_p();
	pid_t c = fork_dying_with_parent();
	if (c == 0) {
		for (;;)
			if (sys_checkpoint(CKPT_FREEZE_TREE, freeze_fd, pp, 0) == 0)
				sh->trees++;
	}
	/* Done when both sides made 100 calls; wedged when neither moved for 30 s. */
	unsigned long ls = 0, lt = 0;
	int quiet = 0;
	while (sh->selfs < 100 || sh->trees < 100) {
		usleep(1000);
		if (sh->selfs == ls && sh->trees == lt) {
			if (++quiet >= 30000)
				break;
		} else {
			quiet = 0;
			ls = sh->selfs;
			lt = sh->trees;
		}
	}
	int ok = sh->selfs >= 100 && sh->trees >= 100;
	printf("self=%d tree=%d\n", sh->selfs >= 100, sh->trees >= 100);
	if (!ok)
		printf("FAIL wedged after %lu self-freezes and %lu tree freezes\n", sh->selfs, sh->trees);
	kill(c, SIGKILL);
	kill(pp, SIGKILL);
	if (!ok)
		return 1;
	printf("ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "stuck") && strcmp(argv[1], "loop"))) {
		fprintf(stderr, "usage: %s stuck|loop\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0); /* Each line out at once: a timeout keeps what was said. */
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	loop_mode = !strcmp(argv[1], "loop");
	return loop_mode ? loop() : stuck_mode();
}
