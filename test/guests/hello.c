/* hello: prints its arguments and exits with the status given as argv[1] (default 0). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	printf("hello from the sandbox:");
	for (int i = 1; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");
	fflush(stdout);
	fprintf(stderr, "hello on stderr\n");
	return argc > 1 ? atoi(argv[1]) : 0;
}
