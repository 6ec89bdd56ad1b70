/* A static test program for compat_test.go: it stops itself with SIGSTOP inside a known function so a
 * tracer can capture its real state and gdb can be asked for a backtrace of the resulting image. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

volatile long ckpt_sink;

__attribute__((noinline)) void ckpt_stop_here(long depth) {
	char *heap = malloc(1 << 16);
	memset(heap, 0x5a, 1 << 16);
	ckpt_sink = depth + heap[100];
	raise(SIGSTOP);
	ckpt_sink++;
}

int main(void) {
	ckpt_stop_here(42);
	return 0;
}
