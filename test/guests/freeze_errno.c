/* freeze_errno: exercises the error paths of sys_checkpoint(CKPT_FREEZE) and prints one line per
 * case, "<case> ret=<r> errno=<name>", for the test to compare with the exact errno.
 *
 * usage: freeze_errno SCRATCHDIR
 * SCRATCHDIR must be writable; the ENOSPC cases mount a 1 MiB tmpfs below it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../include/ckpt.h"

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case ERANGE: return "ERANGE";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ESTALE: return "ESTALE";
	case EIO: return "EIO";
	default: return "other";
	}
}

static void report(const char *name, long r)
{
	printf("%s ret=%ld errno=%s\n", name, r, r < 0 ? ename(errno) : "0");
	fflush(stdout);
}

/* count_entries returns the number of directory entries other than . and .. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s SCRATCHDIR\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	char path[4096];

	/* 4 MiB of non-zero memory, so an image cannot fit in 1 MiB. */
	size_t big = 4 << 20;
	char *mem = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(mem, 0x5a, big);

	snprintf(path, sizeof path, "%s/ro.img", dir);
	int ro = open(path, O_RDONLY | O_CREAT, 0600);
	report("bad_type", sys_checkpoint(99, ro, -1, 0));
	report("fd_readonly", sys_checkpoint(CKPT_FREEZE, ro, -1, 0));
	report("fd_closed", sys_checkpoint(CKPT_FREEZE, 1000, -1, 0));
	report("fd_minus2", sys_checkpoint(CKPT_FREEZE, -2, -1, 0));
	report("fd_minus1_pid_self", sys_checkpoint(CKPT_FREEZE, -1, getpid(), 0));

	snprintf(path, sizeof path, "%s/ok.img", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	report("pid_zero", sys_checkpoint(CKPT_FREEZE, fd, 0, 0));
	report("pid_negative", sys_checkpoint(CKPT_FREEZE, fd, -7, 0));
	report("pid_missing", sys_checkpoint(CKPT_FREEZE, fd, 999999, 0));
	report("pid_self", sys_checkpoint(CKPT_FREEZE, fd, getpid(), 0));

	struct rlimit old, zero = {0, 0};
	getrlimit(RLIMIT_CORE, &old);
	setrlimit(RLIMIT_CORE, &zero);
	report("rlimit_core_zero", sys_checkpoint(CKPT_FREEZE, fd, -1, 0));
	setrlimit(RLIMIT_CORE, &old);

	prctl(PR_SET_DUMPABLE, 0);
	report("not_dumpable", sys_checkpoint(CKPT_FREEZE, fd, -1, 0));
	prctl(PR_SET_DUMPABLE, 1);

	/* An O_APPEND image: holes must grow the file, not be seeked over (an append ignores the offset). */
	snprintf(path, sizeof path, "%s/append.img", dir);
	int afd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	report("append", sys_checkpoint(CKPT_FREEZE, afd, -1, 0));
	close(afd);

	/* A 1 MiB tmpfs: the image does not fit. */
	snprintf(path, sizeof path, "%s/small", dir);
	mkdir(path, 0700);
	if (mount("none", path, "tmpfs", 0, "size=1m") != 0) {
		printf("mount ret=-1 errno=%s\n", ename(errno));
		return 1;
	}
	snprintf(path, sizeof path, "%s/small/full.img", dir);
	int sfd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	report("enospc_fd", sys_checkpoint(CKPT_FREEZE, sfd, -1, 0));
	struct stat st;
	fstat(sfd, &st);
	printf("enospc_fd_size=%lld offset=%lld\n", (long long)st.st_size, (long long)lseek(sfd, 0, SEEK_CUR));
	close(sfd);
	unlink(path);

	snprintf(path, sizeof path, "%s/small", dir);
	if (chdir(path) != 0) {
		perror("chdir");
		return 1;
	}
	report("enospc_ckptfile", sys_checkpoint(CKPT_FREEZE, -1, -1, 0));
	printf("enospc_ckptfile_entries=%d\n", count_entries("."));

	/* After all that, a freeze to a file that fits still works. Start the file afresh: the
	 * pid_self freeze above left an image at its start and the offset after it. */
	if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
		perror("truncate");
		return 1;
	}
	report("ok_after", sys_checkpoint(CKPT_FREEZE, fd, -1, 0));
	printf("done\n");
	return 0;
}
