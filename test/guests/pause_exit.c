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

#include "../../include/ckpt.h"

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	size_t bulk = (size_t)atoi(argv[1]) << 20;
	unsigned char *b = mmap(NULL, bulk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < bulk; i += 64)
		b[i] = (unsigned char)(i >> 12) | 1;
	printf("kill=%d\n", kill(getpid(), SIGCKPT));
	return 0;
}
