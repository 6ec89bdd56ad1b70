package test

import (
	"testing"
)

// TestTreeSharedObjectsOCI: a parent and its child sharing a pipe with unread bytes, a unix socket
// pair with data queued both ways, an eventfd, a memfd mapped shared by both, and shared anonymous
// memory (test/guests/tree_shared.c), checkpointed with --format=elf, deleted and restored: each
// object is one object again, with its data once. The child reads the pipe's and its socket
// end's bytes, the eventfd's count, the memfd's and the shared page's contents and changes each;
// the parent then sees every change (the eventfd count the child added, the memfd bytes through
// its mapping and its fd, the shared page) and the child's bytes on the socket after those it had
// queued before the checkpoint. A SysV message queued before the checkpoint is received once (by
// the child; the parent then finds the queue empty). An epoll instance made before the fork is one
// instance: an interest the child adds after the restore is seen by the parent's epoll_wait. A
// unix listener bound to an abstract name before the fork is bound once: the parent accepts the
// child's connection to it after the restore. A third process cloned with CLONE_FS still shares the parent's fs
// context: its chdir after the restore moves the parent's working directory.
func TestTreeSharedObjectsOCI(t *testing.T) {
	guest := h.BuildC(t, "tree_shared")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startGuestTree(t, p, guest, "shared.log")
		dir, m := checkpointTreeAndDelete(t, a)
		kinds := map[string]int{}
		for _, o := range m.Objects {
			kinds[o.Kind]++
		}
		if kinds["fifo"] != 2 || kinds["eventfd"] != 1 {
			// The two sockets of a pair are two objects (one inode each); the parent's end is
			// shared with the fs child, which inherited it.
			t.Errorf("shared objects of the manifest: %v, want two pipes and one eventfd", kinds)
		}

		if fs := m.Process(3); fs == nil || fs.FSOf != 1 {
			t.Errorf("the manifest does not record pid 3 sharing pid 1's fs context: %+v", fs)
		}

		r := restoreLogged(t, p, a, dir, m, "shared.log")
		r.kill(t, logHas("child done\n"), "-USR1", "2")
		r.kill(t, logHas("fschild done\n"), "-USR1", "3")
		r.kill(t, logHas("parent done\n"), "-USR1", "1")
		r.checkLines(t, 20, " done")
	})
}

// TestTreeSharedFSContextOCI: two siblings sharing an fs context and an fd table that their parent
// does not share (test/guests/tree_fsctx.c: cloned with CLONE_FS|CLONE_FILES by a process that
// then exited), checkpointed with --format=elf, deleted and restored: the second sibling is cloned
// by the first with CLONE_FS|CLONE_FILES|CLONE_PARENT, so after the restore the first's chdir,
// umask and new fd are seen by the second, both are still children of the init, and the init's
// working directory and umask do not move.
// A child cloned with CLONE_FILES shares the init's fd table again after the restore: an fd it
// opens is the init's too, and its fds are on the same open file descriptions (one offset).
func TestTreeSharedFSContextOCI(t *testing.T) {
	guest := h.BuildC(t, "tree_fsctx")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startGuestTree(t, p, guest, "fsctx.log")
		dir, m := checkpointTreeAndDelete(t, a)
		if len(m.Processes) != 4 || m.Process(3) == nil || m.Process(4) == nil || m.Process(3).PPID != 1 || m.Process(4).PPID != 1 ||
			m.Process(4).FSOf != 3 || m.Process(1).FSOf != 0 || m.Process(4).FilesOf != 3 || m.Process(3).FilesOf != 0 {
			t.Fatalf("the checkpoint does not hold the init and two of its children sharing an fs context and an fd table: %+v", m.Processes)
		}
		if fc := m.Process(5); fc == nil || fc.PPID != 1 || fc.FilesOf != 1 {
			t.Fatalf("the checkpoint does not record pid 5 sharing the init's fd table: %+v", fc)
		}

		r := restoreLogged(t, p, a, dir, m, "fsctx.log")
		for _, step := range []struct{ pid, done string }{{"3", "fsa done"}, {"4", "fsb done"}, {"5", "filesc done"}, {"1", "parent done"}} {
			r.kill(t, logHas(step.done), "-USR1", step.pid)
		}
		r.checkLines(t, 11)
	})
}
