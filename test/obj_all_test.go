package test

import "testing"

// objAllWant is what the thawed obj_all guest prints when every object came back.
const objAllWant = "pipe=1\nsocketpair=1\nunix_listener=1\ntcp_listener=1\nudp=1\nmemfd=1\nunlinked=1\neventfd=1\nepoll=1\ntimerfd=1\nposix_timer_signalfd=1\nproc_self=1\nterminal=1\ninotify=1\nsiginfo=1\npidfd=1\ntcp_pair=1\nsysv_shm=1\nsysv_sem=1\nsysv_msg=1\numask=1\ndontfork=1\nnsfs=1\ndgram_pair=1\nremoved_dir_file=1\nnetlink_stub=1\nall=1\n"

// TestObjAll: one process holding one of each kernel object the image rebuilds (a pipe, a unix
// socketpair and listener, a TCP listener, a UDP socket with a queued datagram, a sealed memfd, an
// unlinked file, an eventfd, a timerfd, a signalfd, an epoll watching three of them, a
// /proc/self file, a POSIX timer, a pty pair with a queued input line, an inotify watch, a queued
// real-time signal with its value, a pidfd of itself, a TCP loopback connection with unread bytes
// both ways, a SysV shared memory segment, semaphore set and message queue, a umask, a
// MADV_DONTFORK page, an nsfs fd, a unix datagram pair with queued messages, a file of a
// removed directory and a netlink socket, whose state is not kept: a fresh one of its kind) is frozen, killed, and thawed in a new sandbox and in the
// same sandbox; each object is checked by the thawed program (test/guests/obj_all.c). The
// thorough per-kind checks are the obj_* tests.
func TestObjAll(t *testing.T) {
	guest := h.BuildC(t, "obj_all")
	thawNewAndSame(t, objThaw{guest: guest, img: "all.ckpt", want: "r=1 errno=0\n" + objAllWant, exec: true})
}
