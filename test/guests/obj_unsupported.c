/* obj_unsupported: kernel objects a freeze refuses or a sandbox does not have.
 *
 * usage: obj_unsupported IMAGE aio|iouring|userfaultfd
 *
 * aio: io_setup(2) made an AIO context; iouring: io_uring_setup(2) made an io_uring instance (fd
 * and mapped rings); userfaultfd: userfaultfd(2) is tried. Then the process freezes itself into
 * IMAGE and prints "setup=<0|-errno> r=<result> errno=<name> size=<image bytes>"; it exits 0 (it is
 * never killed: a refused freeze leaves the process running). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "guest.h"

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE aio|iouring|userfaultfd\n", argv[0]);
		return 2;
	}
	long setup = -1;
	if (strcmp(argv[2], "aio") == 0) {
		unsigned long ctx = 0;
		setup = syscall(SYS_io_setup, 8, &ctx);
	} else if (strcmp(argv[2], "iouring") == 0) {
		unsigned char params[120] = {0}; /* struct io_uring_params */
		int fd = syscall(__NR_io_uring_setup, 4, params);
		setup = fd;
		if (fd >= 0) {
			/* Map the submission ring, as every io_uring user does. */
			void *sq = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (sq == MAP_FAILED)
				setup = -1000 - errno;
			else
				setup = 0;
		}
	} else if (strcmp(argv[2], "userfaultfd") == 0) {
		setup = syscall(SYS_userfaultfd, O_CLOEXEC);
	} else {
		return 2;
	}
	if (setup < 0 && setup > -1000)
		setup = -errno;
	int img = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	long r = sys_checkpoint(CKPT_FREEZE, img, -1, 0);
	int e = r < 0 ? errno : 0;
	struct stat st;
	fstat(img, &st);
	printf("setup=%ld r=%ld errno=%s size=%lld\n", setup, r, errname(e), (long long)st.st_size);
	return 0;
}
