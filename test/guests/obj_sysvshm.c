/* obj_sysvshm: SysV shared memory segments through a freeze and a thaw.
 *
 * usage: obj_sysvshm IMAGE KEY [noremoved]
 *
 * Creates and removes 3 throw-away segments (so the ids of interest are not the first ones), then:
 *   A: key KEY (hex), IPC_CREAT|0640, 3 pages + 100 bytes, filled with a pattern, attached twice
 *      (read-write, and read-only);
 *   B: IPC_PRIVATE, 1 page, "private" written, attached, then IPC_RMID (still attached)
 *      (left out with "noremoved");
 * freezes itself into IMAGE (fd 20) and kills itself with SIGKILL. After a thaw it checks ids,
 * key, mode, size, contents, IPC_RMID state, that both attachments of A are one segment and that
 * a child forked now shares it; prints key=value lines (1 = as expected), exit 0 if all are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

#define PG 4096
#define ASIZE (3 * PG + 100)

static char pattern(long i) { return (char)('a' + i % 19); }

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE KEY [noremoved]\n", argv[0]);
		return 2;
	}
	key_t key = (key_t)strtol(argv[2], NULL, 16);
	int removed = !(argc > 3 && strcmp(argv[3], "noremoved") == 0);
	for (int i = 0; i < 3; i++) {
		int d = shmget(IPC_PRIVATE, PG, 0600);
		if (d < 0 || shmctl(d, IPC_RMID, NULL) != 0)
			return 2;
	}
	int a = shmget(key, ASIZE, IPC_CREAT | IPC_EXCL | 0640);
	if (a < 0) {
		perror("shmget A");
		return 2;
	}
	char *a1 = shmat(a, NULL, 0), *a2 = shmat(a, NULL, SHM_RDONLY);
	if (a1 == (void *)-1 || a2 == (void *)-1)
		return 2;
	for (long i = 0; i < ASIZE; i++)
		a1[i] = pattern(i);
	int b = -1;
	char *b1 = NULL;
	if (removed) {
		b = shmget(IPC_PRIVATE, PG, 0600);
		b1 = shmat(b, NULL, 0);
		if (b < 0 || b1 == (void *)-1)
			return 2;
		strcpy(b1, "private");
		if (shmctl(b, IPC_RMID, NULL) != 0)
			return 2;
	}
	printf("a=%d b=%d a1=%p a2=%p\n", a, b, (void *)a1, (void *)a2);

	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || dup2(fd, 20) != 20)
		return 2;
	long r = freeze_fd_and_die(20);
	if (r < 0)
		return 1;

	struct shmid_ds ds;
	check("a_id", shmget(key, 0, 0) == a);
	check("a_stat", shmctl(a, IPC_STAT, &ds) == 0 && ds.shm_segsz == ASIZE && (ds.shm_perm.mode & 0777) == 0640 &&
				(key_t)ds.shm_perm.__key == key);
	int data = 1;
	for (long i = 0; i < ASIZE; i++)
		data = data && a1[i] == pattern(i) && a2[i] == pattern(i);
	check("a_data", data);
	a1[5] = '#';
	check("a_shared", a2[5] == '#');
	check("a_readonly", shmdt(a2) == 0 && (a2 = shmat(a, NULL, SHM_RDONLY)) != (void *)-1 && a2[5] == '#');
	pid_t c = fork();
	if (c == 0) {
		a1[6] = '%';
		_exit(0);
	}
	int status;
	check("a_fork", c > 0 && waitpid(c, &status, 0) == c && a1[6] == '%');
	if (removed) {
		check("b_data", strcmp(b1, "private") == 0);
		check("b_removed", shmctl(b, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_DEST) != 0);
	}
	shmdt(a1);
	shmdt(a2);
	printf("fails=%d\n", check_fails);
	return check_fails ? 1 : 0;
}
