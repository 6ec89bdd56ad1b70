// tree_reaper LOG: the parent of a zombie that reaps it only when told. It forks a child that exits
// with status 7 at once, then waits for SIGUSR1 (a restore in another sandbox must keep the child
// a zombie meanwhile: nothing here reaps it or catches SIGCHLD); on SIGUSR1 it reaps the child and
// appends "zombie PID CODE" to LOG, then sleeps forever.
// Used by TestTreePipelineOCI, where busybox sh cannot stand in (it reaps on SIGCHLD).
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t told;

static void on_usr1(int sig) {
	(void)sig;
	told = 1;
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: tree_reaper LOG\n");
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	pid_t z = fork();
	if (z < 0) {
		perror("fork");
		return 1;
	}
	if (z == 0)
		_exit(7);
	while (!told)
		pause();
	int status;
	if (waitpid(z, &status, 0) != z) {
		perror("waitpid");
		return 1;
	}
	FILE *f = fopen(argv[1], "a");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	fprintf(f, "zombie %d %d\n", (int)z, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	fclose(f);
	for (;;)
		pause();
}
