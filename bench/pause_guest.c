/* pause_guest: measures how long a checkpoint stops each thread of a running program.
 *
 * The program dirties SIZE_MIB MiB of anonymous memory (every page non-zero), then THREADS threads
 * (the main thread is thread 0) read CLOCK_MONOTONIC in a loop, sleeping 100 us between reads, and
 * record every gap between two reads of 500 us or more: first over a quiet window of QUIET_MS
 * (nothing happens: the noise floor of the machine), then over a window of WINDOW_MS at whose start
 * the checkpoint is triggered. MODE says how:
 *   self    the main thread calls sys_checkpoint(CKPT_FREEZE, fd, -1) into IMAGE itself
 *   other   a child process calls sys_checkpoint(CKPT_FREEZE, fd, parent) into IMAGE (checkpt -c)
 *   signal  a child process sends SIGCKPT to the program and waits (inotify) until IMAGE (the
 *           ckpt-file, pass its name) appears
 *   host    nothing: the program creates READY_FILE (IMAGE) at the window's start, and the host
 *           triggers the checkpoint (runsc-ckpt kill CID SIGCKPT, runsc checkpoint --leave-running);
 *           with DONE_FILE (the ckpt-file SIGCKPT writes, published by a rename when complete), a
 *           child process waits for it (inotify: no polling beside the measured threads) to learn
 *           when the checkpoint ended. A child, not a thread: a waiting thread would be one more
 *           thread of the checkpointed process to stop and restart, which the other modes do not
 *           have (their helper is a child process too)
 * When the checkpoint is complete (the call returned, the image appeared) the program prints
 * "ckpt_done" at once, so that the host can copy the image while the program still runs.
 *
 * At the end it prints per thread "thread=<i> quiet_us=<noise> stop_us=<stop> window_us=<max>":
 *   stop    the longest gap that overlaps the checkpoint, from its trigger to its completion (the
 *           longest gap of the whole window when the completion is not known: upstream's save)
 *   noise   the noise floor for an interval as long as that checkpoint: the quiet window is cut
 *           into slices of the checkpoint's length (at least one), and this is the median over
 *           the slices of the longest gap in each. The longest gap of a long window grows with the
 *           window on a shared machine (a 1 s window of this VM saw 4 ms, a 9 s one 13-26 ms), so
 *           a stop is compared with the noise of an equally long interval.
 *   max     the longest gap of the whole window (what this program reported before)
 * and, except for host, "total_us=<checkpoint time>" (the call, or until the image appeared).
 * With PAUSE_GAPS_MS=N in the environment it also lists every gap of N ms or more of the window
 * after the trigger, "gap thread=<i> start_us=<from the trigger> len_us=<length>", and when the
 * checkpoint ended, "ckpt_end_us=<from the trigger>", to place a long stop on the checkpoint's
 * timeline (its start, the write, the end) and to compare the write with what follows it (the
 * host's copy of the image while the program still runs, in bench/pause.sh).
 *
 * usage: pause_guest SIZE_MIB THREADS QUIET_MS WINDOW_MS MODE IMAGE [DONE_FILE] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"

#define MAXTHREADS 16
#define MAXGAPS 16384
#define MINGAP_US 2000

/* gap is one recorded gap: its end and its length, in us since t0. */
struct gap {
	long end, len;
};

static long quiet_ms, window_ms;
static struct timespec t0;
static struct gap gaps[MAXTHREADS][MAXGAPS];
static int ngaps[MAXTHREADS];
static volatile int window_started;
/* trig_us and done_us: the checkpoint's trigger and completion, in us since t0 (-1: unknown). */
static volatile long trig_us = -1, done_us = -1;

static long us_since(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000000L + (b->tv_nsec - a->tv_nsec) / 1000;
}

static long now_us(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return us_since(&t0, &now);
}

static void record(int id, long end, long len)
{
	if (len >= MINGAP_US && ngaps[id] < MAXGAPS)
		gaps[id][ngaps[id]++] = (struct gap){end, len};
}

/* done marks the checkpoint complete now and tells the host at once. */
static void done(void)
{
	done_us = now_us();
	printf("ckpt_done\n");
	fflush(stdout);
}

static void spin(int id, void (*at_window)(void))
{
	struct timespec last, now, nap = {0, 100000};
	clock_gettime(CLOCK_MONOTONIC, &last);
	for (;;) {
		nanosleep(&nap, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		long gap = us_since(&last, &now), at = us_since(&t0, &now);
		record(id, at, gap);
		if (at >= quiet_ms * 1000) {
			if (at_window && !window_started) {
				window_started = 1;
				clock_gettime(CLOCK_MONOTONIC, &last);
				trig_us = us_since(&t0, &last);
				at_window();
				clock_gettime(CLOCK_MONOTONIC, &now);
				record(id, us_since(&t0, &now), us_since(&last, &now));
			}
			if (at > (quiet_ms + window_ms) * 1000)
				return;
		}
		last = now;
	}
}

/* cmp_long orders longs for qsort. */
static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

/* report prints thread id's figures (see the header). */
static void report(int id)
{
	long q = quiet_ms * 1000, w0 = q, stop = 0, wmax = 0;
	long len = (trig_us >= 0 && done_us > trig_us) ? done_us - trig_us : q;
	if (len > q)
		len = q;
	int slices = (int)(q / len);
	static long slice_max[4096];
	if (slices > 4096)
		slices = 4096;
	memset(slice_max, 0, sizeof slice_max);
	for (int i = 0; i < ngaps[id]; i++) {
		struct gap g = gaps[id][i];
		if (g.end < q) {
			int s = (int)(g.end / len);
			if (s < slices && g.len > slice_max[s])
				slice_max[s] = g.len;
			continue;
		}
		if (g.end - g.len < w0 && g.end < trig_us)
			continue; /* straddles the windows' boundary before the trigger */
		if (g.len > wmax)
			wmax = g.len;
		if (done_us < 0 || (g.end >= trig_us && g.end - g.len <= done_us))
			if (g.len > stop)
				stop = g.len;
	}
	if (done_us < 0)
		stop = wmax;
	const char *list = getenv("PAUSE_GAPS_MS");
	long list_us = list ? atol(list) * 1000 : 0;
	if (list_us > 0 && id == 0 && done_us >= 0)
		printf("ckpt_end_us=%ld\n", done_us - trig_us);
	for (int i = 0; list_us > 0 && i < ngaps[id]; i++) {
		struct gap g = gaps[id][i];
		if (g.len >= list_us && g.end >= trig_us)
			printf("gap thread=%d start_us=%ld len_us=%ld\n", id, g.end - g.len - trig_us, g.len);
	}
	qsort(slice_max, slices, sizeof slice_max[0], cmp_long);
	printf("thread=%d quiet_us=%ld stop_us=%ld window_us=%ld\n", id, slices ? slice_max[(slices - 1) / 2] : 0, stop, wmax);
}

static void *worker(void *arg)
{
	spin((int)(long)arg, NULL);
	return NULL;
}

static const char *mode, *image, *done_file;
static int go_pipe[2];
static long total_us = -1;

/* wait_file blocks until path exists, without polling: an inotify watch on its directory wakes it
 * when an entry is created or renamed there (the ckpt-file is renamed into place when complete).
 * Polling every millisecond, as this did before, put 1,000 stat calls a second through the sentry
 * and the gofer beside the threads being measured, which `other` mode did not have. It returns 0
 * when the file exists, -1 when stop_us (us since t0, or -1 for none) passed first or on error. */
static int wait_file(const char *path, long stop_us)
{
	char dir[4096] = ".";
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (slash) /* "/x" watches "/", "a/b/x" watches "a/b" */
		snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	int in = inotify_init1(IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, dir, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		perror("inotify");
		if (in >= 0)
			close(in);
		return -1;
	}
	struct stat st;
	int found = stat(path, &st) == 0;
	while (!found) {
		long left = stop_us < 0 ? 1000 : (stop_us - now_us()) / 1000;
		if (left <= 0)
			break;
		struct pollfd pfd = {in, POLLIN, 0};
		if (poll(&pfd, 1, left > 1000 ? 1000 : (int)left) <= 0) {
			found = stat(path, &st) == 0; /* an event missed: look once a second */
			continue;
		}
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		ssize_t n = read(in, buf, sizeof buf);
		for (char *p = buf; n > 0 && p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->len && strcmp(ev->name, base) == 0)
				found = 1;
			p += sizeof *ev + ev->len;
		}
	}
	close(in);
	return found ? 0 : -1;
}

static void trigger(void)
{
	struct timespec a, b;
	if (strcmp(mode, "self") == 0) {
		int fd = open(image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		clock_gettime(CLOCK_MONOTONIC, &a);
		long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (r != 0)
			fprintf(stderr, "self freeze failed: errno %d\n", errno);
		close(fd);
		total_us = us_since(&a, &b);
		done();
	} else if (strcmp(mode, "host") == 0) {
		close(open(image, O_WRONLY | O_CREAT | O_TRUNC, 0644));
		if (done_file && write(go_pipe[1], "g", 1) != 1)
			perror("go");
	} else {
		if (write(go_pipe[1], "g", 1) != 1)
			perror("go");
	}
}

/* child waits for the go byte, then checkpoints its parent, says so on stdout and reports the
 * time and the completion instant on the pipe. */
static void child(pid_t parent, int report)
{
	char c;
	if (read(go_pipe[0], &c, 1) != 1)
		_exit(1);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (strcmp(mode, "other") == 0) {
		int fd = open(image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		long r = sys_checkpoint(CKPT_FREEZE, fd, parent, 0);
		if (r != 0)
			fprintf(stderr, "freeze of %d failed: errno %d\n", parent, errno);
	} else if (strcmp(mode, "signal") == 0) {
		unlink(image);
		kill(parent, SIGCKPT);
		if (wait_file(image, -1) != 0)
			_exit(1);
	} else { /* host: the host triggered it; wait for its ckpt-file, at most the window */
		t0 = a;
		if (wait_file(done_file, window_ms * 1000) != 0)
			_exit(1);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("ckpt_done\n");
	fflush(stdout);
	long msg[3] = {us_since(&a, &b), b.tv_sec, b.tv_nsec};
	if (write(report, msg, sizeof msg) != sizeof msg)
		_exit(1);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: %s SIZE_MIB THREADS QUIET_MS WINDOW_MS MODE IMAGE [DONE_FILE]\n", argv[0]);
		return 2;
	}
	size_t size = (size_t)atol(argv[1]) << 20;
	int threads = atoi(argv[2]);
	quiet_ms = atol(argv[3]);
	window_ms = atol(argv[4]);
	mode = argv[5];
	image = argv[6];
	done_file = argc > 7 ? argv[7] : NULL;
	if (threads < 1 || threads > MAXTHREADS || quiet_ms < 1)
		return 2;
	unsigned char *mem = mmap(NULL, size ? size : 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < size; i += 4096)
		memset(mem + i, (int)((i >> 12) | 1) & 0xff, 4096);
	int rep[2];
	if (pipe(go_pipe) || pipe(rep))
		return 1;
	pid_t kid = -1;
	if (strcmp(mode, "other") == 0 || strcmp(mode, "signal") == 0 || (done_file && strcmp(mode, "host") == 0)) {
		pid_t parent = getpid();
		fflush(stdout);
		kid = fork();
		if (kid == 0)
			child(parent, rep[1]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_t th[MAXTHREADS];
	for (int i = 1; i < threads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(long)i);
	spin(0, trigger);
	for (int i = 1; i < threads; i++)
		pthread_join(th[i], NULL);
	if (kid > 0) {
		long msg[3];
		if (read(rep[0], msg, sizeof msg) == sizeof msg) {
			struct timespec b = {msg[1], msg[2]};
			if (strcmp(mode, "host") != 0) /* the host times its own command */
				total_us = msg[0];
			done_us = us_since(&t0, &b);
		}
		waitpid(kid, NULL, 0);
	}
	for (int i = 0; i < threads; i++)
		report(i);
	if (total_us >= 0)
		printf("total_us=%ld\n", total_us);
	return 0;
}
