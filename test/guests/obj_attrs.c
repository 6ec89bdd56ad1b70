/* obj_attrs: process attributes through a freeze and a thaw (issue 8 item 7).
 *
 * usage: obj_attrs IMAGE
 *
 * Sets umask 027, oom_score_adj 123, PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG SIGUSR2, registers
 * for MEMBARRIER_CMD_PRIVATE_EXPEDITED and sets the supplementary groups to 1234, 5678 (as root).
 * Prints "r=<result> errno=<n>"; after the freeze itself (r == 0) it kills itself with SIGKILL.
 * After a thaw prints "umask=.. oom=.. subreaper=.. pdeath=.. membarrier=.. groups=.." (1 = as
 * frozen) and exits 0 if all are (the thawer, root in the sandbox, may set the groups). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "guest.h"

static int oom_adj(void)
{
	char buf[32] = {0};
	int fd = open("/proc/self/oom_score_adj", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
		return -9999;
	close(fd);
	return atoi(buf);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	umask(027);
	int fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd < 0 || write(fd, "123", 3) != 3) {
		perror("oom_score_adj");
		return 2;
	}
	close(fd);
	gid_t groups[] = {1234, 5678};
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0 || prctl(PR_SET_PDEATHSIG, SIGUSR2) != 0 ||
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0 || setgroups(2, groups) != 0) {
		perror("setting up");
		return 2;
	}
	freeze_and_die(argv[1]);

	mode_t m = umask(0);
	int subreaper = -1, pdeath = -1;
	prctl(PR_GET_CHILD_SUBREAPER, &subreaper);
	prctl(PR_GET_PDEATHSIG, &pdeath);
	gid_t got[16];
	int n = getgroups(16, got);
	int gr = n == 2 && got[0] == 1234 && got[1] == 5678;
	/* Without the registration, MEMBARRIER_CMD_PRIVATE_EXPEDITED fails with EPERM. */
	int mb = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
	int oom = oom_adj() == 123;
	printf("umask=%d oom=%d subreaper=%d pdeath=%d membarrier=%d groups=%d\n", m == 027, oom, subreaper == 1,
	       pdeath == SIGUSR2, mb, gr);
	return m == 027 && oom && subreaper == 1 && pdeath == SIGUSR2 && mb && gr ? 0 : 1;
}
