// tree_incr LOG: a container of three processes (the init and two children) for the incremental
// container checkpoint tests (test/incr_tree_test.go). Each process fills a 4 MiB region of its own
// with a pattern of its own (no zero page), then the init prints "ready" once both children have.
// On SIGUSR1 the init steps and passes the signal on to its children: a step S changes one byte in
// each of 4 pages chosen by S, step 2 in every fifth page ("R step S ok" in LOG, R the process's
// role 0, 1, 2). At step 1 the init also forks a fourth process (role 3, "3 born ok"), whose region
// starts as if it had made step 1: a process new since a first checkpoint. On SIGUSR2 every
// process checks its whole region against what the steps it made must have left there (rebuilt
// from scratch) and logs "R verify S ok", or "R verify S bad page P".
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tree_log.h"

#define PAGE 4096
#define NPAGES 1024
#define NCHILD 2

static volatile sig_atomic_t step_req, verify_req;
static void on_sig(int sig)
{
	if (sig == SIGUSR1)
		step_req++;
	else
		verify_req++;
}

/* fill writes the initial pattern of role r: never a zero byte. */
static void fill(unsigned char *b, int r)
{
	for (size_t i = 0; i < (size_t)NPAGES * PAGE; i++)
		b[i] = (unsigned char)(1 + (i * 7 + i / PAGE * 13 + r * 101) % 255);
}

/* apply makes step s's change to b: 4 pages, except step 2, which changes every fifth page (205
 * runs of one page: more ranges than a thaw maps one by one, so it maps the parent's pages and
 * patches the changed ones, thaw_incr.go). */
static void apply(unsigned char *b, int s)
{
	if (s == 2) {
		for (size_t page = 0; page < NPAGES; page += 5)
			b[page * PAGE + 77] ^= 0x33;
		return;
	}
	for (int j = 0; j < 4; j++) {
		size_t page = ((size_t)s * 37 + (size_t)j * 101) % NPAGES;
		b[page * PAGE + (size_t)(s * 53 + j) % PAGE] ^= 0x5a;
	}
}

/* The init's children: NCHILD from the start, one more born at step 1. */
static pid_t children[NCHILD + 1];
static int nchildren;

/* run is process r's life; it has made steps0 steps already (a child born at a step). It returns
 * only in the child the init forks at step 1, which then runs as role NCHILD + 1. */
static int run(int r, int steps0)
{
	unsigned char *region = mmap(NULL, (size_t)NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		die("mmap");
	fill(region, r);
	int steps = steps0;
	for (int s = 1; s <= steps; s++)
		apply(region, s);
	char who[8], what[64], seen[64];
	snprintf(who, sizeof who, "%d", r);
	if (r == NCHILD + 1) {
		logline(who, "born", 1, "");
	} else if (r != 0) {
		/* Tell the init this process is ready: a byte on stdout is the init's pipe. */
		if (write(1, "k", 1) != 1)
			die("ready");
	}
	sigset_t none;
	sigemptyset(&none);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	if (r == 0)
		printf("ready\n");
	for (;;) {
		while (!step_req && !verify_req)
			sigsuspend(&none);
		if (step_req) {
			step_req--;
			steps++;
			apply(region, steps);
			for (int i = 0; i < nchildren; i++)
				kill(children[i], SIGUSR1);
			if (r == 0 && steps == 1) {
				/* A process new since the first checkpoint: its image is complete. */
				pid_t pid = fork();
				if (pid < 0)
					die("fork");
				if (pid == 0) {
					munmap(region, (size_t)NPAGES * PAGE);
					return 1;
				}
				children[nchildren++] = pid;
			}
			snprintf(what, sizeof what, "step %d", steps);
			logline(who, what, 1, "");
		}
		if (verify_req) {
			verify_req--;
			for (int i = 0; i < nchildren; i++)
				kill(children[i], SIGUSR2);
			unsigned char *want = malloc((size_t)NPAGES * PAGE);
			if (!want)
				die("malloc");
			fill(want, r);
			for (int s = 1; s <= steps; s++)
				apply(want, s);
			int bad = -1;
			for (int p = 0; p < NPAGES && bad < 0; p++)
				if (memcmp(region + (size_t)p * PAGE, want + (size_t)p * PAGE, PAGE) != 0)
					bad = p;
			free(want);
			snprintf(what, sizeof what, "verify %d", steps);
			snprintf(seen, sizeof seen, "bad page %d", bad);
			logline(who, what, bad < 0, seen);
		}
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: tree_incr LOG\n");
		return 2;
	}
	struct sigaction sa = {.sa_handler = on_sig};
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	if (!(logf_ = fopen(argv[1], "a")))
		die("log");
	setvbuf(stdout, NULL, _IONBF, 0);
	int ready[2];
	if (pipe(ready) != 0)
		die("pipe");
	for (int i = 0; i < NCHILD; i++) {
		children[i] = fork();
		if (children[i] < 0)
			die("fork");
		if (children[i] == 0) {
			close(ready[0]);
			dup2(ready[1], 1);
			close(ready[1]);
			run(i + 1, 0);
			return 1;
		}
	}
	close(ready[1]);
	char c;
	for (int i = 0; i < NCHILD; i++)
		if (read(ready[0], &c, 1) != 1)
			die("children not ready");
	close(ready[0]);
	nchildren = NCHILD;
	if (run(0, 0)) {
		nchildren = 0;
		step_req = verify_req = 0;
		run(NCHILD + 1, 1);
	}
	return 1;
}
