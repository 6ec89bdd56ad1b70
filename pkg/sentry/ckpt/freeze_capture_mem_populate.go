package ckpt

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/hostarch"
)

// A lent view is written from the sentry's own mapping of the memory file, which the sentry has
// mostly never touched: the image file's write (copy_from_user in the host kernel) then faults
// the pages in one at a time, as it reaches them. Populating the run's page tables first with one
// madvise(MADV_POPULATE_READ) (Linux 5.14) costs a fraction of that: on 2026-12-04's VM, writing
// 1 GiB from a fresh shared mapping of a memfd took 401–432 ms, populating it first 26–28 ms and
// the write then 246–247 ms, below even sendfile(2) from the memfd (297–306 ms) and `cat`'s
// in-kernel copy (320–327 ms) (docs/notes-pause.md, "Populating the lent views"). The runs
// populated are only those mincore(2) found resident, so nothing is allocated in the memory file.
// When the sandbox's memory is in huge pages (gVisor's application huge pages, when the host's
// shmem_enabled allows them) a populate maps 2 MiB at a time: 1 GiB in 1–2 ms instead of 50–63
// (docs/notes-pause.md, "Application huge pages").

// populateUnsupported is set once the host refuses MADV_POPULATE_READ (EINVAL: a kernel before
// 5.14), after which the lent views are faulted in by the write as before. Package state like
// viewRoutes: a property of the host kernel, the same for every image of the sandbox.
var populateUnsupported atomic.Bool

// populateMinBytes is the least a run must hold to be populated first: below it the madvise
// costs about what it saves.
const populateMinBytes = 4 * hostarch.PageSize

// populateRead populates the page tables of the sentry's mapping b (page aligned: a run of
// resident pages of the memory file) for reading, and reports whether it did. A failure is not an
// error: the write faults the pages in instead.
func populateRead(b []byte) bool {
	if len(b) < populateMinBytes || populateUnsupported.Load() {
		return false
	}
	addr := uintptr(unsafe.Pointer(&b[0]))
	if addr%hostarch.PageSize != 0 || len(b)%hostarch.PageSize != 0 {
		return false
	}
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(len(b)), unix.MADV_POPULATE_READ)
	if errno == unix.EINVAL {
		populateUnsupported.Store(true)
	}
	return errno == 0
}
