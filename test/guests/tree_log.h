/* tree_log.h: what the tree guests with a parent and children share (tree_shared.c, tree_fsctx.c,
 * tree_halfclose.c): a log file of "WHO WHAT ok" lines (or what was seen instead), and waiting for
 * the test's SIGUSR1 (on_usr1 must be installed as its handler). */
#ifndef RUNSC_CKPT_TEST_TREE_LOG_H
#define RUNSC_CKPT_TEST_TREE_LOG_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t told;

static inline void on_usr1(int sig)
{
	(void)sig;
	told = 1;
}

/* logf_ is the log, opened by main. */
static FILE *logf_;

/* logline logs "who what ok", or "who what seen" when !ok. */
static inline void logline(const char *who, const char *what, int ok, const char *seen)
{
	fprintf(logf_, "%s %s %s\n", who, what, ok ? "ok" : seen);
	fflush(logf_);
}

static inline void die(const char *what)
{
	perror(what);
	exit(1);
}

/* waitusr1 waits for the next SIGUSR1. */
static inline void waitusr1(void)
{
	while (!told)
		pause();
	told = 0;
}

/* tree_log_start checks that argv is "NAME LOG", installs on_usr1 for SIGUSR1, opens the log
 * (appending) and makes stdout unbuffered: what every tree guest's main does first. */
static inline void tree_log_start(int argc, char **argv, const char *name)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s LOG\n", name);
		exit(2);
	}
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	if (!(logf_ = fopen(argv[1], "a")))
		die("log");
	setvbuf(stdout, NULL, _IONBF, 0);
}

#endif
