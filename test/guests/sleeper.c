/* sleeper: prints "ready <pid>" and then sleeps until killed (at most argv[1] seconds, default 600). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 600;
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (int i = 0; i < secs; i++)
		sleep(1);
	printf("slept %d s\n", secs);
	return 0;
}
