/* hostile_fault: a process killed while it freezes (issue 13 item 5; test/fault_test.go).
 *
 * usage: hostile_fault MIB
 *          Dirties MIB MiB of memory, prints "freezing" and freezes itself into its ckpt-file
 *          (sys_checkpoint(CKPT_FREEZE, -1, -1, 0): %N.ckpt in its working directory, written to a
 *          temporary file and renamed), then prints "frozen r=R errno=E" and sleeps, so that the
 *          test can kill it, or its sandbox, during the freeze or after it. */
#include <stdlib.h>
#include <string.h>

#include "guest.h"

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	size_t n = (size_t)atoi(argv[1]) << 20;
	char *m = malloc(n);
	if (m == NULL)
		return 2;
	for (size_t i = 0; i < n; i += 4096)
		m[i] = (char)(i >> 12 | 1);
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("freezing\n");
	long r = sys_checkpoint(CKPT_FREEZE, -1, -1, 0);
	printf("frozen r=%ld errno=%d\n", r, r < 0 ? errno : 0);
	for (;;)
		sleep(1);
}
