/* freeze_eio EIODIR GOODDIR: freezes itself into files on EIODIR, a file system whose writes fail
 * with EIO past the first 64 KiB (TestFreezeEIO's FUSE file system): first through an fd
 * (eio.img; prints the call's result and the file's size and offset afterwards), the same with
 * CKPT_FREEZE_ASYNC (the error comes from CKPT_WAIT), then as the
 * ckpt-file (cwd EIODIR; prints the number of entries left there). Then it shows it still runs
 * (it computes and prints alive=1) and freezes into GOODDIR/ok.img. */
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "guest.h"

static void report(const char *name, long r)
{
	printf("%s ret=%ld errno=%s\n", name, r, errname(r < 0 ? errno : 0));
	fflush(stdout);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: freeze_eio EIODIR GOODDIR\n");
		return 2;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/eio.img", argv[1]);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open eio.img");
		return 2;
	}
	report("eio_fd", sys_checkpoint(CKPT_FREEZE, fd, -1, 0));
	struct stat st;
	fstat(fd, &st);
	printf("eio_fd_size=%lld offset=%lld\n", (long long)st.st_size, (long long)lseek(fd, 0, SEEK_CUR));
	close(fd);
	unlink(path);

	/* In the background: CKPT_WAIT reports the write's EIO; the file is truncated back too. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	report("eio_async", sys_checkpoint(CKPT_FREEZE_ASYNC, fd, -1, 0));
	report("eio_wait", sys_checkpoint(CKPT_WAIT, -1, -1, 0));
	fstat(fd, &st);
	printf("eio_async_size=%lld\n", (long long)st.st_size);
	close(fd);
	unlink(path);

	if (chdir(argv[1]) != 0) {
		perror("chdir");
		return 2;
	}
	report("eio_ckptfile", sys_checkpoint(CKPT_FREEZE, -1, -1, 0));
	printf("eio_ckptfile_entries=%d\n", count_entries("."));

	volatile long n = 0;
	for (int i = 0; i < 1000000; i++)
		n += i;
	printf("alive=%d\n", n == 499999500000L);
	snprintf(path, sizeof path, "%s/ok.img", argv[2]);
	int ok = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	report("ok_after", sys_checkpoint(CKPT_FREEZE, ok, -1, 0));
	return 0;
}
