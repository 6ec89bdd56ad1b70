// tree_incr_guest SIZE_MIB PERMILLE: the container of bench/tree_incr.sh. Fills SIZE_MIB MiB of
// anonymous memory (no zero page), prints "ready", and on each SIGUSR1 changes one byte in PERMILLE
// of every thousand pages (spread evenly) and prints "changed N".
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t req;
static void on_usr1(int sig) { (void)sig; req++; }

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: tree_incr_guest SIZE_MIB PERMILLE\n");
		return 2;
	}
	size_t pages = (size_t)atol(argv[1]) * 256;
	long permille = atol(argv[2]);
	unsigned char *b = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < pages * 4096; i++)
		b[i] = (unsigned char)(1 + i % 251);
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("ready\n");
	sigset_t block, none;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &block, NULL);
	for (int n = 1;; n++) {
		while (!req)
			sigsuspend(&none);
		req--;
		size_t step = permille > 0 ? 1000 / (size_t)permille : pages + 1;
		for (size_t p = 0; p < pages; p += step)
			b[p * 4096 + (size_t)n % 4096] ^= 0x5a;
		printf("changed %d\n", n);
	}
}
