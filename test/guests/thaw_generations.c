/* thaw_generations: a computation that freezes after each of three steps; every step is thawed
 * from the previous step's image in a new sandbox. The test deletes each image once the next one is
 * written, so a thawed-and-refrozen process must not depend on the image it came from.
 *
 * usage: thaw_generations DIR
 *
 * Step n updates 2 MiB of state, freezes into DIR/gen<n>.ckpt and prints
 * "gen=<n> r=<result> sum=<checksum of the state>". After a freeze itself (r == 0) it kills itself
 * with SIGKILL; after a thaw (r == 1) it goes on with step n+1. After step 3 it prints "done" and
 * exits 0. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "../../include/ckpt.h"

#define N (1 << 18)

static unsigned long state[N];

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	for (int i = 0; i < N; i++)
		state[i] = i;
	for (int gen = 1; gen <= 3; gen++) {
		for (int i = 0; i < N; i++)
			state[i] = state[i] * 3 + gen;
		char path[4096];
		snprintf(path, sizeof path, "%s/gen%d.ckpt", argv[1], gen);
		unlink(path);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0) {
			perror("open image");
			return 2;
		}
		long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
		close(fd);
		unsigned long sum = 0;
		for (int i = 0; i < N; i++)
			sum = sum * 31 + state[i];
		printf("gen=%d r=%ld sum=%lx\n", gen, r, sum);
		fflush(stdout);
		if (r == 0)
			kill(getpid(), SIGKILL);
		if (r != 1)
			return 1;
	}
	printf("done\n");
	return 0;
}
