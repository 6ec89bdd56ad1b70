/* incr_chain: a process that checkpoints itself four times, each image incremental against the
 * previous one (CKPT_FREEZE_INCR), changing some of its memory in between.
 *
 * usage: incr_chain DIR
 *
 * Step 0 fills a 16 MiB anonymous region and a 64 KiB static array and writes the complete image
 * DIR/0.img. Steps 1-3 change pages (40, 200 and 10 scattered ones, one page back to zero and later
 * non-zero again, a new 256 KiB mapping in step 2 that the parent has no pages for) and write
 * DIR/<n>.img
 * with DIR/<n-1>.img as the parent. Each step prints "step=<n> r=<result> errno=<e> sum=<checksum
 * of all that memory>". After the last freeze it prints "frozen" and exits 0. A thaw of DIR/<n>.img
 * resumes in step n with r=1: it prints the step's line (the same sum if the memory is right) and
 * "thawed", and exits 0. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../include/ckpt.h"

#define PAGE 4096
#define APAGES 4096 /* 16 MiB */
#define CPAGES 64

static unsigned char *a, *c;
static unsigned char b[16 * PAGE];

static unsigned long checksum(void)
{
	unsigned long s = 1469598103934665603UL;
	for (size_t i = 0; i < (size_t)APAGES * PAGE; i += 8)
		s = (s ^ *(unsigned long *)(a + i)) * 1099511628211UL;
	for (size_t i = 0; i < sizeof b; i += 8)
		s = (s ^ *(unsigned long *)(b + i)) * 1099511628211UL;
	if (c)
		for (size_t i = 0; i < (size_t)CPAGES * PAGE; i += 8)
			s = (s ^ *(unsigned long *)(c + i)) * 1099511628211UL;
	return s;
}

static void touch(int step, int n)
{
	for (int i = 0; i < n; i++) {
		size_t page = ((size_t)i * 97 + (size_t)step * 13) % APAGES;
		memset(a + page * PAGE + 64 * step, 0x40 + step, 100);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	a = mmap(NULL, (size_t)APAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t i = 0; i < (size_t)APAGES * PAGE; i += 8)
		*(unsigned long *)(a + i) = i * 2654435761UL;
	for (size_t i = 0; i < sizeof b; i++)
		b[i] = (unsigned char)(i * 7);
	for (int step = 0; step <= 3; step++) {
		switch (step) {
		case 1:
			touch(step, 40);
			memset(a + 1000 * PAGE, 0, PAGE);
			break;
		case 2:
			/* 200 scattered pages: with step 1's 40, the big region of images 2 and 3
			 * resolves to more ranges than a thaw maps lazily, so it is copied. */
			touch(step, 200);
			c = mmap(NULL, CPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (c == MAP_FAILED) {
				perror("mmap c");
				return 2;
			}
			memset(c, 0x5a, CPAGES * PAGE);
			break;
		case 3:
			touch(step, 10);
			a[1000 * PAGE + 5] = 1;
			b[3 * PAGE] ^= 0xff;
			c[7 * PAGE] ^= 0xff;
			break;
		}
		char path[4096], parent[4096];
		snprintf(path, sizeof path, "%s/%d.img", argv[1], step);
		unlink(path);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0) {
			perror("open image");
			return 2;
		}
		long r;
		if (step == 0) {
			r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
		} else {
			snprintf(parent, sizeof parent, "%s/%d.img", argv[1], step - 1);
			int pfd = open(parent, O_RDONLY);
			if (pfd < 0) {
				perror("open parent");
				return 2;
			}
			r = sys_checkpoint(CKPT_FREEZE_INCR, fd, -1, pfd);
			close(pfd);
		}
		int e = r < 0 ? errno : 0;
		close(fd);
		printf("step=%d r=%ld errno=%d sum=%lx\n", step, r, e, checksum());
		fflush(stdout);
		if (r == 1) {
			printf("thawed\n");
			return 0;
		}
		if (r != 0)
			return 1;
	}
	printf("frozen\n");
	return 0;
}
