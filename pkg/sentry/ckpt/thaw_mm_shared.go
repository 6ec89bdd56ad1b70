package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// MAP_SHARED mappings of named files. The freeze stores their bytes like any content mapping (so
// the image stands alone, and gdb reads them) together with the file's handle and offset, after
// flushing the mapping's dirty pages to the file (msync(MS_SYNC): a gofer file's pages may sit in
// the sentry's cache, which a new sandbox would not see). The thaw maps the file again, shared, at
// its offset, as DragonFly's thaw maps a vnode again: writes through the mapping reach the file
// and other processes that map it (a tree restore's processes sharing /dev/shm/x), and writes to
// the file show in the mapping. The file's contents are then what the process sees, not the
// image's copy; they are the same unless the file was written after the freeze, which a shared
// mapping would have shown too. The file must be the same, unchanged file (the checks of a
// reference mapping: kind, size, times near) and openable by the thawer with the access the
// mapping needs (read-write for a writable one); otherwise the image's copy is mapped private,
// as before this existed, and the log says why (no error: the image holds the bytes).

// sharedFileMapping reports whether m is a shared content mapping of a named file.
func sharedFileMapping(m *imgfmt.Mapping) bool {
	return m.Kind == imgfmt.MapContent && m.Shared && m.File != nil && !m.Delta
}

// reopenSharedFile reopens the file of mapping i (a sharedFileMapping) for a shared mapping, or
// returns nil (the image's private copy is mapped instead).
func reopenSharedFile(t *kernel.Task, i int, m *imgfmt.Mapping) *vfs.FileDescription {
	flags := uint32(linux.O_RDONLY)
	if m.Prot&imgfmt.ProtWrite != 0 {
		flags = linux.O_RDWR
	}
	f, err := reopenMappedFile(t, m, flags) // thaw_mm.go
	if err == nil {
		return f
	}
	t.Infof("ckpt: thaw: shared mapping %d [%#x, %#x) of %q comes back as a private copy of the image's bytes: %v", i, m.Start, m.End, m.File.Path, err)
	return nil
}

// flushSharedFileMapping writes the dirty pages of a shared, writable mapping of a named file
// back to the file (msync MS_SYNC), so that a thaw that maps the file again finds them there.
// A failure is logged: the image holds the bytes, and a thaw that finds the file different falls
// back to them.
func flushSharedFileMapping(t *kernel.Task, m *mm.MemoryManager, start, end hostarch.Addr, path string) {
	if err := m.MSync(t, start, uint64(end-start), mm.MSyncOpts{Sync: true}); err != nil {
		t.Infof("ckpt: freeze: flushing the shared mapping [%#x, %#x) of %q: %v", start, end, path, err)
	}
}
