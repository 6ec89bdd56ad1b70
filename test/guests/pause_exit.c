/* pause_exit: sends itself SIGCKPT and exits at once, while its image is still being written in
 * the background. Run as the sandbox's init: the sandbox must not end before the image is complete.
 *
 * usage: pause_exit BULK_MIB */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest.h"

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	fill_bulk((size_t)atoi(argv[1]));
	printf("kill=%d\n", kill(getpid(), SIGCKPT));
	return 0;
}
