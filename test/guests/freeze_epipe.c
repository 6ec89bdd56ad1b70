/* freeze_epipe: freezes itself into stdout, which the test makes a pipe whose reader stops
 * reading and exits early (`freeze_epipe | head -c 100000`). The freeze must fail with EPIPE
 * and the process must keep running: it prints "r=<ret> errno=<n> alive=1" to stderr and exits 0.
 * SIGPIPE keeps its default action (terminate), so a freeze that raised it kills the guest. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "../../include/ckpt.h"

int main(void)
{
	/* 8 MiB of non-zero memory: the image is far bigger than what head reads. */
	size_t n = 8 << 20;
	char *mem = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 2;
	memset(mem, 0x55, n);
	long r = sys_checkpoint(CKPT_FREEZE, 1, -1, 0);
	fprintf(stderr, "r=%ld errno=%d alive=1\n", r, r < 0 ? errno : 0);
	return 0;
}
