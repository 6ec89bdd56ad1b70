package test

import "testing"

// TestTreeMapSharedFileOCI: three processes of a container share a named file in the sandbox's
// /tmp through MAP_SHARED mappings (a parent and its forked child one inherited mapping, a second
// child its own; test/guests/tree_mapshared.c). After checkpoint --format=elf, delete and restore
// they still share it: what one writes through its mapping the others see in theirs and read(2)
// finds in the file (the file comes back from the /tmp archive, each mapping is mapped shared from
// it: pkg/sentry/ckpt/thaw_mm_shared.go). Before, each came back with a private copy.
func TestTreeMapSharedFileOCI(t *testing.T) {
	guest := h.BuildC(t, "tree_mapshared")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startGuestTree(t, p, guest, "mapshared.log")
		dir, m := checkpointTreeAndDelete(t, a)
		if len(m.Processes) != 3 {
			t.Fatalf("the checkpoint does not hold the init and two children: %+v", m.Processes)
		}
		r := restoreLogged(t, p, a, dir, m, "mapshared.log")
		r.kill(t, logHas("child done"), "-USR1", "2")
		r.kill(t, logHas("mapper sees"), "-USR1", "3")
		r.kill(t, logHas("parent file"), "-USR1", "1")
		r.checkLines(t, 4)
	})
}
