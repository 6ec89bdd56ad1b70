/* thaw_threads: four threads through a freeze and a thaw. Three workers count in their own TLS
 * variable and, under a shared mutex, in a global; one of them sleeps in nanosleep between rounds.
 * The main thread freezes the process into IMAGE while the workers run.
 *
 * usage: thaw_threads IMAGE [IMAGE2]
 *
 * Prints "r=<sys_checkpoint result> errno=<n>". After the freeze itself (r == 0) the process kills
 * itself with SIGKILL. After a thaw (r == 1) it checks that every worker still makes progress. With
 * IMAGE2 it then freezes again into IMAGE2 (a thawed multi-threaded process re-frozen), printing
 * "r2=<result>", and kills itself after that freeze; a thaw of IMAGE2 goes on here. Finally it stops
 * the workers, joins them (each returns its TLS count, which must be consistent with what it
 * published), and prints "progress=<0|1> joined=<n> tls=<0|1> mutex=<0|1> signals=<0|1>" (signals: the
 * main thread pthread_kills every worker and a worker pthread_kills the main thread, which needs the
 * new tids where glibc keeps them) and "scratch_gone=<0|1>" (the thaw's frame scratch is unmapped
 * once every thread has run); exit 0 if all are good. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define WORKERS 3

static __thread unsigned long mine;
static pthread_t main_th;
static volatile int poke_main; /* 1: worker 0 must pthread_kill the main thread; 2: done; 3: failed */
static volatile int main_hits, worker_hits;

static void on_usr1(int sig)
{
	(void)sig;
	if (pthread_equal(pthread_self(), main_th))
		main_hits++;
	else
		__sync_fetch_and_add(&worker_hits, 1);
}
static volatile unsigned long published[WORKERS];
static volatile int stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long shared_total, shared_by[WORKERS];

static void *worker(void *arg)
{
	long i = (long)arg;
	while (!stop) {
		mine++;
		published[i] = mine;
		pthread_mutex_lock(&mu);
		shared_total++;
		shared_by[i]++;
		pthread_mutex_unlock(&mu);
		if (i == 0 && poke_main == 1)
			poke_main = pthread_kill(main_th, SIGUSR1) == 0 ? 2 : 3;
		if (i == WORKERS - 1) {
			struct timespec ts = {0, 200000};
			nanosleep(&ts, NULL);
		}
	}
	return (void *)mine;
}

static int all_progress(const unsigned long *before)
{
	for (int i = 0; i < WORKERS; i++)
		if (published[i] <= before[i])
			return 0;
	return 1;
}

/* wait_progress waits up to 2 s for every worker to publish a higher count. */
static int wait_progress(void)
{
	return counters_advance(published, WORKERS, 2000);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	main_th = pthread_self();
	signal(SIGUSR1, on_usr1);
	pthread_t th[WORKERS];
	for (long i = 0; i < WORKERS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	unsigned long zero[WORKERS] = {0};
	while (!all_progress(zero))
		usleep(1000);

	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open image");
		return 2;
	}
	long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
	printf("r=%ld errno=%d\n", r, r < 0 ? errno : 0);
	fflush(stdout);
	close(fd);
	if (r == 0)
		kill(getpid(), SIGKILL);

	int progress = wait_progress();
	if (argc > 2) {
		fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0) {
			perror("open image2");
			return 2;
		}
		long r2 = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
		printf("r2=%ld errno=%d\n", r2, r2 < 0 ? errno : 0);
		fflush(stdout);
		close(fd);
		if (r2 == 0)
			kill(getpid(), SIGKILL);
		progress = progress && r2 == 1 && wait_progress();
	}
	/* pthread_kill goes by the tid the thread library stored: after a thaw (new tids) it must still
	 * reach the right threads, the main thread included. */
	int kills = 1;
	for (int i = 0; i < WORKERS; i++)
		kills = kills && pthread_kill(th[i], SIGUSR1) == 0;
	poke_main = 1;
	for (int tries = 0; tries < 2000 && (poke_main < 2 || main_hits == 0 || worker_hits < WORKERS); tries++)
		usleep(1000);
	int signals_ok = kills && poke_main == 2 && main_hits == 1 && worker_hits == WORKERS;
	/* Every thread has run since the thaw: the thaw's frame scratch must be gone. */
	int scratch_gone = 1;
	char line[512];
	FILE *maps = fopen("/proc/self/maps", "r");
	while (maps && fgets(line, sizeof line, maps))
		if (strstr(line, "runsc-ckpt-thaw"))
			scratch_gone = 0;
	if (maps)
		fclose(maps);
	stop = 1;
	int joined = 0, tls = 1;
	for (int i = 0; i < WORKERS; i++) {
		void *ret;
		if (pthread_join(th[i], &ret) == 0)
			joined++;
		if ((unsigned long)ret != published[i])
			tls = 0;
	}
	unsigned long sum = 0;
	for (int i = 0; i < WORKERS; i++)
		sum += shared_by[i];
	int mutex_ok = pthread_mutex_trylock(&mu) == 0 && sum == shared_total;
	printf("progress=%d joined=%d tls=%d mutex=%d signals=%d scratch_gone=%d\n", progress, joined, tls, mutex_ok,
	       signals_ok, scratch_gone);
	return r == 1 && progress && joined == WORKERS && tls && mutex_ok && signals_ok && scratch_gone ? 0 : 1;
}
