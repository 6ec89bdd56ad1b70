/* tree_agent_flag DIR N: restores the tree checkpoint DIR N times as children of this process
 * (CKPT_THAW_TREE, flags 0), killing each restored root again, while two spinners (a child and a
 * grandchild) call sys_checkpoint(CKPT_THAW_TREE, -1, ID, 1<<30) in a loop: 1<<30 is the tree
 * restore's internal agent flag, ID the id of the restore under way (restores are numbered from 1
 * in a sandbox). No guest may reach the agent's wait: every such call must fail with EINVAL at
 * once. Before the fix a call made during a restore waited, in a loop only SIGKILL ended, for ever.
 * Prints "restored=N", then "spinner=K calls=C einval=E other=O" per spinner and "ok", or "FAIL
 * ..." lines and exit 1. */
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "guest.h"

#define AGENT_FLAG (1 << 30)

struct shared {
	volatile int stop;
	volatile int cur;   /* The id of the restore under way (or about to start). */
	volatile long calls[2], einval[2], other[2];
	volatile int last_errno[2];
};

static struct shared *sh;

static void spin(int k)
{
	int id = 1;
	while (!sh->stop) {
		int use = (sh->calls[k] & 1) ? sh->cur : id;
		id = id % 16 + 1;
		long r = sys_checkpoint(CKPT_THAW_TREE, -1, use, AGENT_FLAG);
		sh->calls[k]++;
		if (r == -1 && errno == EINVAL) {
			sh->einval[k]++;
		} else {
			sh->other[k]++;
			sh->last_errno[k] = r == -1 ? errno : 0;
		}
	}
	_exit(0);
}

/* wait_bounded waits for pid to exit, at most limit seconds; 0 if it did not. */
static int wait_bounded(pid_t pid, int limit)
{
	for (int i = 0; i < limit * 100; i++) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return 1;
		if (w < 0)
			return 1;
		usleep(10000);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: tree_agent_flag DIR N\n");
		return 2;
	}
	int n = atoi(argv[2]);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	sh->cur = 1;
	pid_t child = fork_dying_with_parent();
	if (child == 0)
		spin(0);
	pid_t middle = fork_dying_with_parent();
	if (middle == 0) {
		/* The grandchild: its parent is not the restorer. The middle process exits 0 once it
		 * has exited after stop, 3 if it did not within 30 s. */
		pid_t gc = fork_dying_with_parent();
		if (gc == 0)
			spin(1);
		while (!sh->stop)
			usleep(10000);
		_exit(wait_bounded(gc, 30) ? 0 : 3);
	}
	int fail = 0, restored = 0;
	for (int i = 0; i < n; i++) {
		int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
		if (dir < 0) {
			perror("open DIR");
			return 2;
		}
		sh->cur = i + 1;
		long root = sys_checkpoint(CKPT_THAW_TREE, dir, -1, 0);
		close(dir);
		if (root <= 0) {
			printf("FAIL restore %d: r=%ld errno=%d\n", i + 1, root, errno);
			fail = 1;
			break;
		}
		restored++;
		kill(root, SIGKILL);
		waitpid(root, NULL, 0);
	}
	printf("restored=%d\n", restored);
	sh->stop = 1;
	if (!wait_bounded(child, 30)) {
		printf("FAIL spinner 0 (a child of the restorer) still in sys_checkpoint after 30 s\n");
		fail = 1;
	}
	int st = 0, done = 0;
	for (int i = 0; i < 4000 && !(done = waitpid(middle, &st, WNOHANG) == middle); i++)
		usleep(10000);
	if (!done || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("FAIL spinner 1 (a grandchild) still in sys_checkpoint after 30 s\n");
		fail = 1;
	}
	for (int k = 0; k < 2; k++) {
		printf("spinner=%d calls=%ld einval=%ld other=%ld last_errno=%d\n", k, sh->calls[k], sh->einval[k], sh->other[k], sh->last_errno[k]);
		if (sh->other[k] != 0) {
			printf("FAIL spinner %d: %ld calls did not fail with EINVAL\n", k, sh->other[k]);
			fail = 1;
		}
		if (sh->calls[k] == 0) {
			printf("FAIL spinner %d made no call\n", k);
			fail = 1;
		}
	}
	if (fail)
		return 1;
	printf("ok\n");
	return 0;
}
