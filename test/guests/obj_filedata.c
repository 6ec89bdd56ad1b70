/* obj_filedata: unlinked files, memfds and shared memory through a freeze and a thaw.
 *
 * usage: obj_filedata IMAGE DIR [WODIR|- [IMAGE2]]
 *        obj_filedata IMAGE DIR big    (only a memfd of 64 MiB + 1 page of data: the freeze must
 *                                       fail with EFBIG, prints r=-1 errno=27)
 *   DIR: a writable directory that exists where the thaw runs; WODIR: where to make the write-only
 *   unlinked file (fd 33); without it (or "-") fd 33 is not set up and not checked. IMAGE2: right
 *   after the thaw, unlink IMAGE (fd 20 stays open on it), freeze again into IMAGE2 and kill
 *   itself; the checks run after the thaw of IMAGE2 (generation 2: the rebuilt objects are
 *   captured again; the unlinked image must not be copied into IMAGE2).
 *
 * Sets up:
 *   fd 30, 31 (dup)  DIR/unl, O_RDWR, "hello" at 0 and "world" at 1 MiB (a hole between), mode
 *                    0640, unlinked, offset 3
 *   fd 32            DIR/unl opened a second time before the unlink, O_RDONLY, offset 2
 *   fd 33            WODIR/wo, O_WRONLY|O_APPEND, "secret", mode 0200, unlinked
 *   fd 34            memfd "objmemfd" (MFD_CLOEXEC|MFD_ALLOW_SEALING): 3 pages of a pattern + 100
 *                    bytes, seals F_SEAL_SHRINK|F_SEAL_GROW, offset 7; pages 1-2 mapped MAP_SHARED
 *   fd 35            memfd "plain" (no sealing: F_SEAL_SEAL), "abc"
 *   a memfd "maponly" mapped MAP_SHARED twice and closed (only the mappings refer to it)
 *   2 pages of MAP_SHARED|MAP_ANONYMOUS memory holding "anon"
 * then freezes itself into IMAGE (fd 20) and kills itself with SIGKILL. After a thaw it checks
 * every property and prints key=value lines (1 = as expected), exit 0 if all are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

#define PG 4096
#define MIB (1 << 20)

static char pattern(long i) { return (char)('A' + i % 23); }

/* linkpath returns what /proc/self/fd/N reads. */
static const char *linkpath(int fd)
{
	static char buf[4096];
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, buf, sizeof buf - 1);
	buf[n < 0 ? 0 : n] = 0;
	return buf;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE DIR\n", argv[0]);
		return 2;
	}
	char unl[4096], buf[64];
	if (argc > 3 && strcmp(argv[3], "big") == 0) {
		static char chunk[1 << 20];
		memset(chunk, 'x', sizeof chunk);
		at(memfd_create("big", 0), 34);
		for (int i = 0; i < 64; i++)
			if (write(34, chunk, sizeof chunk) != sizeof chunk)
				return 2;
		if (write(34, chunk, PG) != PG)
			return 2;
		at(open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600), 20);
		long r = sys_checkpoint(CKPT_FREEZE, 20, -1, 0);
		printf("r=%ld errno=%d\n", r, r < 0 ? errno : 0);
		return r < 0 && errno == EFBIG ? 0 : 1;
	}
	snprintf(unl, sizeof unl, "%s/unl", argv[2]);
	unlink(unl);
	at(open(unl, O_RDWR | O_CREAT | O_EXCL, 0600), 30);
	if (pwrite(30, "hello", 5, 0) != 5 || pwrite(30, "world", 5, MIB) != 5 || fchmod(30, 0640) != 0)
		return 2;
	at(open(unl, O_RDONLY), 32);
	if (unlink(unl) != 0)
		return 2;
	lseek(30, 3, SEEK_SET);
	lseek(32, 2, SEEK_SET);
	at(dup(30), 31);
	struct stat st0; /* as the frozen process saw it (gVisor's gofer keeps st_nlink 1 after unlink) */
	if (fstat(30, &st0) != 0)
		return 2;

	char wo[4096];
	int haveWO = argc > 3 && strcmp(argv[3], "-") != 0;
	if (haveWO) {
		snprintf(wo, sizeof wo, "%s/wo", argv[3]);
		unlink(wo);
		at(open(wo, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0200), 33);
		if (write(33, "secret", 6) != 6 || unlink(wo) != 0)
			return 2;
	}

	at(memfd_create("objmemfd", MFD_CLOEXEC | MFD_ALLOW_SEALING), 34);
	fcntl(34, F_SETFD, FD_CLOEXEC); /* dup2 cleared it */
	for (long i = 0; i < 3 * PG + 100; i++)
		buf[0] = pattern(i), pwrite(34, buf, 1, i);
	if (fcntl(34, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
		return 2;
	lseek(34, 7, SEEK_SET);
	char *mm = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, 34, PG);
	if (mm == MAP_FAILED)
		return 2;
	mm[PG] = '!'; /* file offset 2 pages */

	at(memfd_create("plain", 0), 35);
	if (write(35, "abc", 3) != 3)
		return 2;

	int mo = memfd_create("maponly", 0);
	if (mo < 0 || ftruncate(mo, 2 * PG) != 0)
		return 2;
	char *mo1 = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, mo, 0);
	char *mo2 = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, mo, PG);
	if (mo1 == MAP_FAILED || mo2 == MAP_FAILED)
		return 2;
	strcpy(mo1 + PG, "maponly");
	close(mo);

	char *anon = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		return 2;
	strcpy(anon, "anon");

	at(open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600), 20);
	long r = freeze_fd_and_die(20);
	if (r < 0)
		return 1;
	if (argc > 4) {
		unlink(argv[1]);
		at(open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0600), 21);
		long r2 = sys_checkpoint(CKPT_FREEZE, 21, -1, 0);
		printf("r2=%ld errno=%d\n", r2, r2 < 0 ? errno : 0);
		fflush(stdout);
		if (r2 == 0)
			kill(getpid(), SIGKILL);
		if (r2 < 0)
			return 1;
		close(21);
	}

	struct stat st;
	/* The unlinked file: contents, hole, size, mode, offsets, both descriptions of one file, and
	 * where it lives again. */
	char expect[4200];
	snprintf(expect, sizeof expect, "%s (deleted)", unl);
	check("unl_path", strcmp(linkpath(30), expect) == 0);
	printf("unl_link=%s\n", linkpath(30));
	check("unl_data", pread(30, buf, 5, 0) == 5 && memcmp(buf, "hello", 5) == 0 &&
				  pread(30, buf, 5, MIB) == 5 && memcmp(buf, "world", 5) == 0 &&
				  pread(30, buf, 5, 4096) == 5 && memcmp(buf, "\0\0\0\0\0", 5) == 0);
	check("unl_stat", fstat(30, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0640 &&
				  st.st_size == MIB + 5 && st.st_nlink == st0.st_nlink);
	/* (gVisor's st_blocks follows st_size, so the holes are checked in the image: test/.) */
	printf("unl_mode=%o unl_size=%ld unl_nlink=%ld/%ld unl_blocks=%ld/%ld\n", st.st_mode, (long)st.st_size,
	       (long)st.st_nlink, (long)st0.st_nlink, (long)st.st_blocks, (long)st0.st_blocks);
	check("unl_offset", lseek(30, 0, SEEK_CUR) == 3 && lseek(32, 0, SEEK_CUR) == 2);
	check("unl_dup", lseek(31, 10, SEEK_SET) == 10 && lseek(30, 0, SEEK_CUR) == 10);
	check("unl_flags", (fcntl(30, F_GETFL) & O_ACCMODE) == O_RDWR && (fcntl(32, F_GETFL) & O_ACCMODE) == O_RDONLY);
	check("unl_shared", pwrite(30, "HELLO", 5, 0) == 5 && pread(32, buf, 5, 0) == 5 && memcmp(buf, "HELLO", 5) == 0);

	if (haveWO) {
		/* The write-only file: mode, O_APPEND kept, contents read through /proc/self/fd. */
		check("wo_stat", fstat(33, &st) == 0 && (st.st_mode & 07777) == 0200 && st.st_size == 6);
		int ro = open("/proc/self/fd/33", O_RDONLY);
		check("wo_data", ro >= 0 && pread(ro, buf, 6, 0) == 6 && memcmp(buf, "secret", 6) == 0);
		check("wo_flags", (fcntl(33, F_GETFL) & (O_ACCMODE | O_APPEND)) == (O_WRONLY | O_APPEND) &&
					  lseek(33, 0, SEEK_CUR) == 6);
		printf("wo_link=%s\n", linkpath(33));
	}

	/* The memfd: name, contents, size, seals, FD_CLOEXEC, offset, and the shared mapping. */
	check("memfd_name", strcmp(linkpath(34), "/memfd:objmemfd (deleted)") == 0);
	int data = 1;
	for (long i = 0; i < 3 * PG + 100; i++) {
		char c;
		data = data && pread(34, &c, 1, i) == 1 && c == (i == 2 * PG ? '!' : pattern(i));
	}
	check("memfd_data", data);
	check("memfd_size", fstat(34, &st) == 0 && st.st_size == 3 * PG + 100);
	check("memfd_seals", fcntl(34, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW));
	check("memfd_seal_enforced", ftruncate(34, PG) < 0 && errno == EPERM);
	printf("memfd_fdflags=%d memfd_offset=%ld\n", fcntl(34, F_GETFD), (long)lseek(34, 0, SEEK_CUR));
	check("memfd_cloexec", fcntl(34, F_GETFD) == FD_CLOEXEC && lseek(34, 0, SEEK_CUR) == 7);
	mm[1] = '@';
	check("memfd_map_to_fd", pread(34, buf, 1, PG + 1) == 1 && buf[0] == '@');
	check("memfd_fd_to_map", pwrite(34, "#", 1, PG + 2) == 1 && mm[2] == '#');
	check("plain_seals", fcntl(35, F_GET_SEALS) == F_SEAL_SEAL && pread(35, buf, 3, 0) == 3 &&
				     memcmp(buf, "abc", 3) == 0 && fcntl(35, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM);

	/* The memfd only mappings refer to: both mappings still see one file. */
	check("maponly_data", strcmp(mo2, "maponly") == 0);
	mo1[PG + 1] = 'A';
	check("maponly_shared", mo2[1] == 'A');

	/* Shared anonymous memory: contents, and still shared (with a child forked now). */
	check("anon_data", strcmp(anon, "anon") == 0);
	pid_t c = fork();
	if (c == 0) {
		strcpy(anon, "child");
		_exit(0);
	}
	int status;
	check("anon_shared", c > 0 && waitpid(c, &status, 0) == c && strcmp(anon, "child") == 0);
	printf("fails=%d\n", check_fails);
	return check_fails ? 1 : 0;
}
