/* freeze_kinds: a process with one of every kind of fd and mapping freezes itself into IMAGE, so the
 * test can check how each is recorded.
 *
 * usage: freeze_kinds IMAGE DIR
 * DIR must hold a file "data" of at least 8 KiB and a symlink "link" (the test makes them).
 * Fds (numbers fixed with dup2): 10 pipe read end, 11 pipe write end (O_NONBLOCK), 12 one end of a
 * socketpair, 13 eventfd, 14 /dev/null O_RDWR, 15 DIR (O_DIRECTORY), 16 O_PATH|O_NOFOLLOW on
 * DIR/link, 17 memfd, 18 DIR/data O_RDWR at offset 1234 with FD_CLOEXEC, 19 epoll.
 * Mappings (addresses printed): "shared" MAP_SHARED|MAP_ANONYMOUS written, "reserve" 256 MiB
 * PROT_NONE never touched, "memfd" MAP_SHARED of the memfd, "cow" MAP_PRIVATE writable of DIR/data
 * at offset 4096 with its first page modified, "ro" MAP_PRIVATE read-only of DIR/data, "beyond"
 * MAP_PRIVATE writable, 3 pages of DIR/small (shorter than a page: pages 2 and 3 are past EOF and
 * would SIGBUS the program) with its first byte modified. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd_kinds.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE DIR\n", argv[0]);
		return 2;
	}
	char path[4096];
	fd_kinds(argv[2], 0);
	if (ftruncate(17, 8192) != 0) {
		perror("ftruncate");
		return 1;
	}

	char *shared = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *reserve = mmap(NULL, 256 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *memfd = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, 17, 0);
	char *cow = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, 18, 4096);
	char *ro = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, 18, 0);
	snprintf(path, sizeof path, "%s/small", argv[2]);
	int sfd = open(path, O_RDONLY);
	char *beyond = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, sfd, 0);
	if (shared == MAP_FAILED || reserve == MAP_FAILED || memfd == MAP_FAILED || cow == MAP_FAILED || ro == MAP_FAILED ||
	    beyond == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	strcpy(shared, "shared anonymous");
	strcpy(memfd, "memfd contents");
	cow[0] = 'C';
	beyond[0] = 'S';
	printf("shared=%#lx reserve=%#lx memfd=%#lx cow=%#lx ro=%#lx beyond=%#lx ro0=%c\n", (unsigned long)shared,
	       (unsigned long)reserve, (unsigned long)memfd, (unsigned long)cow, (unsigned long)ro, (unsigned long)beyond, ro[0]);

	long r = freeze_into(argv[1]);
	return r == 0 ? 0 : 1;
}
