/* obj_sysv: SysV semaphore sets and message queues through a freeze and a thaw (issue 8 item 5).
 *
 * usage: obj_sysv IMAGE          create, freeze, check after a thaw
 *        obj_sysv -clash IMAGE   take message queue id 1 with an IPC_PRIVATE queue, then thaw IMAGE:
 *                                EEXIST, and nothing of the image is left (its semaphore sets,
 *                                created before the clash was found, are gone again)
 *
 * Objects: semaphore set key 0x5eed mode 0640 values {1, 7, 32767} (id 1 in a fresh namespace), a
 * set created and removed (a gap: id 2), an IPC_PRIVATE set {4, 5} (id 3), a message queue key
 * 0x5eee mode 0620 msg_qbytes 4096 holding "hello" (type 1), "world!" (type 5) and 100 bytes with
 * NULs (type 2). Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself
 * with SIGKILL. After a thaw prints "sem=.. private=.. msg=.. order=.." (1 = as frozen) and exits 0
 * if all are, removing the objects. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <unistd.h>

#include "guest.h"

#define SEMKEY 0x5eed
#define MSGKEY 0x5eee

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct msg {
	long type;
	char text[128];
};

static int send(int q, long type, const void *text, size_t n)
{
	struct msg m = {.type = type};
	memcpy(m.text, text, n);
	return msgsnd(q, &m, n, IPC_NOWAIT);
}

static int recv_is(int q, long type, const void *text, size_t n)
{
	struct msg m;
	ssize_t got = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
	return got == (ssize_t)n && m.type == type && memcmp(m.text, text, n) == 0;
}

int main(int argc, char **argv)
{
	char bin[100];
	for (int i = 0; i < 100; i++)
		bin[i] = i % 3 ? 0 : i;
	if (argc == 3 && strcmp(argv[1], "-clash") == 0) {
		int q = msgget(IPC_PRIVATE, 0600);
		int fd = open(argv[2], O_RDONLY);
		long r = sys_checkpoint(CKPT_THAW, fd, -1, 1);
		int e = errno;
		unsigned short v[3];
		int gone = semget(SEMKEY, 0, 0) < 0 && errno == ENOENT && semctl(3, 0, GETALL, (union semun){.array = v}) < 0;
		printf("clash q=%d thaw r=%ld errno=%d gone=%d\n", q, r, r < 0 ? e : 0, gone);
		return 0;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	int a = semget(SEMKEY, 3, IPC_CREAT | IPC_EXCL | 0640);
	unsigned short va[3] = {1, 7, 32767}, vb[2] = {4, 5};
	int gap = semget(IPC_PRIVATE, 1, 0600);
	semctl(gap, 0, IPC_RMID);
	int b = semget(IPC_PRIVATE, 2, 0600);
	int q = msgget(MSGKEY, IPC_CREAT | IPC_EXCL | 0620);
	struct msqid_ds qs;
	if (a < 0 || b < 0 || q < 0 || semctl(a, 0, SETALL, (union semun){.array = va}) != 0 ||
	    semctl(b, 0, SETALL, (union semun){.array = vb}) != 0 || msgctl(q, IPC_STAT, &qs) != 0) {
		perror("setting up");
		return 2;
	}
	qs.msg_qbytes = 4096;
	if (msgctl(q, IPC_SET, &qs) != 0 || send(q, 1, "hello", 5) != 0 || send(q, 5, "world!", 6) != 0 ||
	    send(q, 2, bin, sizeof bin) != 0) {
		perror("setting up the queue");
		return 2;
	}
	printf("ids sem=%d gap=%d private=%d msg=%d\n", a, gap, b, q);
	freeze_and_die(argv[1]);

	unsigned short got[3] = {0};
	struct semid_ds ss;
	int sem = semget(SEMKEY, 0, 0) == a && semctl(a, 0, GETALL, (union semun){.array = got}) == 0 &&
		  memcmp(got, va, sizeof va) == 0 && semctl(a, 0, IPC_STAT, (union semun){.buf = &ss}) == 0 &&
		  (ss.sem_perm.mode & 0777) == 0640 && ss.sem_nsems == 3;
	int private = semctl(b, 0, GETALL, (union semun){.array = got}) == 0 && got[0] == 4 && got[1] == 5 &&
		      semctl(gap, 0, GETALL, (union semun){.array = got}) < 0;
	int msg = msgget(MSGKEY, 0) == q && msgctl(q, IPC_STAT, &qs) == 0 && qs.msg_qbytes == 4096 &&
		  qs.msg_qnum == 3 && (qs.msg_perm.mode & 0777) == 0620;
	int order = recv_is(q, 1, "hello", 5) && recv_is(q, 5, "world!", 6) && recv_is(q, 2, bin, sizeof bin);
	printf("sem=%d private=%d msg=%d order=%d\n", sem, private, msg, order);
	semctl(a, 0, IPC_RMID);
	semctl(b, 0, IPC_RMID);
	msgctl(q, IPC_RMID, NULL);
	return sem && private && msg && order ? 0 : 1;
}
