/* Guest for test/sigckpt_test.go: sends a checkpoint signal in one of several ways and reports
 * what happened, one fact per line on stdout ("key value"), so the test can check each.
 *
 *   sigckpt MODE SIG
 *
 * MODE:
 *   kill       kill(getpid(), SIG), then keep running
 *   tkill      tkill(gettid(), SIG)
 *   tgkill     tgkill(getpid(), gettid(), SIG)
 *   sigqueue   rt_sigqueueinfo(getpid(), SIG, {SI_QUEUE}) via sigqueue(3)
 *   tgsigqueue rt_tgsigqueueinfo(getpid(), gettid(), SIG, {SI_QUEUE})
 *   pidfd      pidfd_send_signal(pidfd_open(getpid()), SIG, NULL, 0)
 *   handler    install a handler for SIG, then kill(getpid(), SIG)
 *   ignore     set SIG to SIG_IGN, then kill(getpid(), SIG)
 *   blocked    block SIG, kill(getpid(), SIG), then unblock it
 *   child      fork a child that ticks; kill(child, SIG); the child keeps ticking
 *   pgrp       fork a child; kill(0, SIG) checkpoints both processes of the group
 *   pidfdpgrp  fork a child; pidfd_send_signal(pidfd_open(getpid()), SIG, NULL,
 *              PIDFD_SIGNAL_PROCESS_GROUP) checkpoints both processes of the group
 *   killall    fork a ticking child, then a second child that calls kill(-1, SIG): only the
 *              ticking child is checkpointed (not the sender, not init = this process)
 *   esrch      kill(<unused pid>, SIG) and tkill(0, SIG): errno only
 *   eperm      fork a child that drops to uid 65534 and sends SIG to its (root) parent
 *   thread     start a second thread; tgkill(getpid(), <its tid>, SIG): that thread freezes
 *   maskedmain start a second thread, block SIG in the main thread only, kill(getpid(), SIG): the
 *              second thread, which does not block it, freezes (Linux's choice of receiver)
 *   loop       print "tick N" every 100 ms, N = 0..SIG-1 (for the host route; SIG is a count)
 *   loophandler like loop, with a handler for SIGCKPT and SIGCKPTEXIT that prints "handler SIGNO"
 *   loopchild  like loop, with a child process (same process group) that loops as well
 *
 * thread and maskedmain print "thread TID" and need -pthread.
 *
 * After sending, the process prints "after N" a few times, proving it kept running, and exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

static volatile sig_atomic_t handled;

static void on_signal(int sig) { handled = sig; }

static void report(const char *what, long r) {
	printf("%s %ld errno %d\n", what, r, r < 0 ? errno : 0);
	fflush(stdout);
}

static void nap_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

static void after(int n) {
	for (int i = 0; i < n; i++) {
		nap_ms(20);
		printf("after %d\n", i);
		fflush(stdout);
	}
}

static void install(int sig, void (*h)(int)) {
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0) {
		perror("sigaction");
		exit(2);
	}
}

static long queue_info(int tgid, int tid, int sig, int thread) {
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = 42;
	if (thread)
		return syscall(SYS_rt_tgsigqueueinfo, tgid, tid, sig, &si);
	return syscall(SYS_rt_sigqueueinfo, tgid, sig, &si);
}

static volatile pid_t worker_tid;
static volatile int worker_stop;

/* worker runs until worker_stop; arg is a signal it unblocks in itself first (0: none). */
static void *worker(void *arg) {
	int unblock = (int)(long)arg;
	if (unblock) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, unblock);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	}
	worker_tid = (pid_t)syscall(SYS_gettid);
	while (!worker_stop)
		nap_ms(5);
	return NULL;
}

static pthread_t start_worker(int unblock) {
	pthread_t th;
	if (pthread_create(&th, NULL, worker, (void *)(long)unblock) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		exit(2);
	}
	while (!worker_tid)
		nap_ms(1);
	printf("thread %d\n", (int)worker_tid);
	fflush(stdout);
	return th;
}

static void tick(int n) {
	for (int i = 0; i < n; i++) {
		printf("tick %d\n", i);
		fflush(stdout);
		if (handled) {
			printf("handler %d\n", (int)handled);
			fflush(stdout);
			handled = 0;
		}
		nap_ms(100);
	}
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s MODE SIG\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1];
	int sig = atoi(argv[2]);
	pid_t pid = getpid();
	pid_t tid = (pid_t)syscall(SYS_gettid);
	printf("pid %d\n", (int)pid);
	fflush(stdout);

	if (!strcmp(mode, "kill")) {
		report("kill", kill(pid, sig));
	} else if (!strcmp(mode, "tkill")) {
		report("tkill", syscall(SYS_tkill, tid, sig));
	} else if (!strcmp(mode, "tgkill")) {
		report("tgkill", syscall(SYS_tgkill, pid, tid, sig));
	} else if (!strcmp(mode, "sigqueue")) {
		report("sigqueue", queue_info(pid, 0, sig, 0));
	} else if (!strcmp(mode, "tgsigqueue")) {
		report("tgsigqueue", queue_info(pid, tid, sig, 1));
	} else if (!strcmp(mode, "pidfd")) {
		long fd = syscall(SYS_pidfd_open, pid, 0);
		if (fd < 0) {
			report("pidfd_open", fd);
			return 3;
		}
		report("pidfd", syscall(SYS_pidfd_send_signal, (int)fd, sig, NULL, 0));
	} else if (!strcmp(mode, "handler")) {
		install(sig, on_signal);
		report("kill", kill(pid, sig));
		printf("handled %d\n", (int)handled);
	} else if (!strcmp(mode, "ignore")) {
		install(sig, SIG_IGN);
		report("kill", kill(pid, sig));
	} else if (!strcmp(mode, "blocked")) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_BLOCK, &set, NULL);
		report("kill", kill(pid, sig));
		sigset_t pending;
		sigpending(&pending);
		printf("pending %d\n", sigismember(&pending, sig));
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		printf("unblocked\n");
	} else if (!strcmp(mode, "child") || !strcmp(mode, "pgrp") || !strcmp(mode, "pidfdpgrp")) {
		int fds[2];
		if (pipe(fds) < 0) {
			perror("pipe");
			return 2;
		}
		pid_t child = fork();
		if (child == 0) {
			close(fds[0]);
			/* Tell the parent we run, then tick until the parent is done. */
			if (write(fds[1], "r", 1) != 1)
				_exit(4);
			for (int i = 0; i < 30; i++) {
				nap_ms(20);
				printf("child tick %d\n", i);
				fflush(stdout);
			}
			_exit(0);
		}
		close(fds[1]);
		char c;
		if (read(fds[0], &c, 1) != 1) {
			perror("read");
			return 2;
		}
		printf("child %d\n", (int)child);
		if (!strcmp(mode, "child")) {
			report("kill", kill(child, sig));
		} else if (!strcmp(mode, "pgrp")) {
			report("kill", kill(0, sig));
		} else {
			long fd = syscall(SYS_pidfd_open, pid, 0);
			if (fd < 0) {
				report("pidfd_open", fd);
				return 3;
			}
			report("pidfd", syscall(SYS_pidfd_send_signal, (int)fd, sig, NULL, 4 /* PIDFD_SIGNAL_PROCESS_GROUP */));
		}
		int status;
		waitpid(child, &status, 0);
		printf("child status %d\n", status);
	} else if (!strcmp(mode, "killall")) {
		pid_t ticker = fork();
		if (ticker == 0) {
			for (int i = 0; i < 30; i++)
				nap_ms(20);
			_exit(0);
		}
		printf("child %d\n", (int)ticker);
		fflush(stdout);
		pid_t sender = fork();
		if (sender == 0) {
			printf("sender %d\n", (int)getpid());
			report("killall", kill(-1, sig));
			nap_ms(300); /* Stay around: kill(-1) must not have checkpointed us. */
			_exit(0);
		}
		int status;
		waitpid(sender, &status, 0);
		waitpid(ticker, &status, 0);
		printf("children done\n");
	} else if (!strcmp(mode, "esrch")) {
		report("kill", kill(999999, sig));
		report("tkill", syscall(SYS_tkill, 0, sig));
		report("tgkill", syscall(SYS_tgkill, pid, 999999, sig));
	} else if (!strcmp(mode, "eperm")) {
		pid_t child = fork();
		if (child == 0) {
			if (setuid(65534) < 0) {
				perror("setuid");
				_exit(3);
			}
			report("kill", kill(getppid(), sig));
			_exit(0);
		}
		int status;
		waitpid(child, &status, 0);
		printf("child status %d\n", status);
	} else if (!strcmp(mode, "thread")) {
		pthread_t th = start_worker(0);
		report("tgkill", syscall(SYS_tgkill, pid, worker_tid, sig));
		nap_ms(200); /* The worker freezes the process on its own, asynchronously. */
		worker_stop = 1;
		pthread_join(th, NULL);
	} else if (!strcmp(mode, "maskedmain")) {
		/* Block SIG before creating the worker (which inherits the mask and unblocks it in
		 * itself): only the worker can take a process-directed SIG. */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		pthread_t th = start_worker(sig);
		report("kill", kill(pid, sig));
		nap_ms(200);
		worker_stop = 1;
		pthread_join(th, NULL);
	} else if (!strcmp(mode, "loop") || !strcmp(mode, "loophandler") || !strcmp(mode, "loopchild")) {
		if (!strcmp(mode, "loophandler")) {
			install(SIGCKPT, on_signal);
			install(SIGCKPTEXIT, on_signal);
		}
		if (!strcmp(mode, "loopchild")) {
			pid_t child = fork();
			if (child == 0) {
				for (int i = 0; i < sig; i++)
					nap_ms(100);
				_exit(0);
			}
			printf("child %d\n", (int)child);
			fflush(stdout);
		}
		tick(sig);
		return 0;
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	fflush(stdout);
	after(3);
	return 0;
}
