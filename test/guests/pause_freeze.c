/* pause_freeze: freezes process PID into its standard output (a pipe, in the tests) with
 * sys_checkpoint(CKPT_FREEZE, 1, PID, 0) and prints "freeze=<ret> errno=<n>" to stderr.
 *
 * usage: pause_freeze PID */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../include/ckpt.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PID\n", argv[0]);
		return 2;
	}
	long r = sys_checkpoint(CKPT_FREEZE, 1, atoi(argv[1]), 0);
	fprintf(stderr, "freeze=%ld errno=%d\n", r, r < 0 ? errno : 0);
	return r == 0 ? 0 : 1;
}
