// Package ckpt is runsc-ckpt's sentry glue: it adds the guest syscall sys_checkpoint (number
// SYS_checkpoint) to gVisor's amd64 syscall table, validates its arguments against the sandbox's
// checkpoint Policy, and hands a validated request to freeze (capture a process into an image) or
// thaw (replace the calling process with an image).
//
// It is the only package of the project that imports gVisor's sentry. Data flows one way:
// guest syscall or signal → this package captures state from gVisor objects into plain Go structs →
// pkg/imgfmt encodes them → file; thaw is the mirror image. The package registers itself in an init
// function, so linking it into the runsc-ckpt binary (which re-executes itself as the sentry,
// `runsc-ckpt boot`) is enough to make the syscall available to every guest.
//
// The guest ABI (numbers, errnos) is fixed by docs/abi.md and mirrored in include/ckpt.h.
//
// # Lock order
//
// Outermost locks must be taken first. gVisor's own order (pkg/sentry/kernel/kernel.go) applies
// to its locks; this package adds its own and never takes one of gVisor's locks directly, only
// through the exported calls named here:
//
//	siblingStop.mu
//	  SignalHandlers.mu (gVisor: Task.BeginExternalStop in siblingWork.TaskWork, and
//	                     Task.EndExternalStop in siblingStop.release, for each parked sibling)
//	Task.mu (gVisor: Task.WithMuLocked in captureStoppedThread)
//	  clearTIDs.mu
//	EpollInstance.interestMu (gVisor: held by AddInterest around our probe's EventRegister;
//	                          the probe reads the interest list and takes no lock of ours)
//
// Every other lock of the package is a leaf: nothing is locked, no gVisor call is made and no
// task blocks while it is held: freezes.mu, remoteFreeze.mu, treeWork.mu, treeRestore.mu,
// restores.mu, thawFrames.mu, routeChooser.mu. No lock of the package is held across a sleep or a wait
// (sleepUnlessKilled, Task.BlockWithTimeout, a channel receive), across captureThread, or across
// a freeze or thaw.
//
// Two waits stand in for locks and are not in the order above: a parked sibling or tree process
// waits for its freezer (siblingStop.release, treeWork.release) in an uninterruptible sleep that a
// kill ends, and a caller of sys_checkpoint on another process waits for remoteFreeze.done. The
// waiter holds no lock of this package. Two rules keep those waits from forming a cycle
// (docs/fuzzing.md, finding 4): a thread that a freeze captured and that then waits in
// beginFreeze to start a freeze of its own counts, for the first freeze, as parked
// (captureWaiting); and a tree freeze never waits for a member's capture to release it
// (releaseWork hands a capture that is not over to a goroutine).
//
// Fields guarded by a mutex carry a `+checklocks:mu` annotation; `make check` runs gVisor's
// checklocks analyzer over the package. Two limits of the analyzer shape the declarations: it does
// not read the annotations of a struct type written inside a composite literal
// (`var freezes = struct{...}{...}`), so each registry has a named type (freezeRegistry); and it
// pairs a struct's fields with their annotations by position, counting `a, b bool` as one, so an
// annotated struct declares one field per line. A field guarded by another value's lock
// (thawScratch.left, by thawFrames.mu) is checked, but the analyzer's inference still suggests a
// sibling lock for it; an expected-failure annotation on the field's line absorbs that hint.
//
// # Package-level state
//
// gVisor's syscall table (linux.AMD64) is process-global, a syscall handler or task work gets
// only the task and its arguments, and gVisor has no exported per-kernel or per-ThreadGroup
// storage for extensions. One sentry process serves exactly one sandbox, so the state a handler
// needs across calls lives in these package-level registries:
//
//   - installed (policy.go): the sandbox's checkpoint Policy, written once by SetPolicy before the
//     kernel runs guest code, read lock-free (atomic pointer) afterwards.
//   - pendingWraps (register.go): the syscall-table wraps that other files request; appended to
//     only during package variable initialization, read once by init. Never changed afterwards.
//   - ckptInFlight (sigckpt.go): the thread that will carry out each process's pending checkpoint
//     signal (a sync.Map), so a second signal merges into the first and two threads of a process
//     never freeze it at once.
//   - freezes (stop_siblings.go): the freeze running in each process, so a thread that freezes
//     while another thread of its process does joins that freeze as a stopped sibling instead of
//     deadlocking with it. Entries live only while a freeze runs.
//   - clearTIDs (freeze_capture_cleartid.go): each task's clear_child_tid address, which gVisor keeps but
//     does not export; fed by wrapping set_tid_address, clone and clone3. Weak keys and a cleanup
//     per task keep no task or address space alive.
//   - thawFrames (thaw_scratch.go): the signal frames of a thaw's new threads that are not read
//     yet, so the rt_sigreturn wrap can unmap their scratch after the last one; pending lets that
//     wrap return at the cost of one atomic load when no thaw is in progress.
//   - restores (thaw_tree.go): the tree restores in progress by id, for the CKPT_THAW_TREE calls
//     of the processes a restore creates (they find their restore by the id).
//   - objectRestorers (thaw_tree_shared.go): how a tree restore recreates each kind of shared
//     object; filled during initialization, read-only afterwards.
//   - objectKeySecret (freeze_capture_objects.go): the random key of the object keys in images, made
//     once at start-up so that keys agree across the freezes of one sandbox without exposing
//     sentry addresses.
//   - tempSeq (ckptfile.go): an atomic counter that makes temporary ckpt-file names unique.
//   - memFiles (freeze_capture_mem_file.go): for each of the sentry's memory files, the sentry
//     addresses of its chunk mappings, so a memory block's offset in the file can be computed and
//     the file read with pread; chunks never move, so entries only grow.
//   - viewBufs (freeze_capture_mem_view.go): a sync.Pool of the 1 MiB buffers image writers read
//     memory into, shared so that a freeze allocates little.
//   - viewRoutes (freeze_capture_mem_route.go): the recent cost per byte of the two ways memory
//     reaches an image (pread, or the sentry's mapping lent as is) and the one in use: a property
//     of the host, learnt from every image the sandbox writes.
//   - populateUnsupported (freeze_capture_mem_populate.go): an atomic flag set once the host
//     kernel refuses madvise(MADV_POPULATE_READ), after which lent views are no longer populated
//     before their write.
//
// Every other package-level variable is a constant table or a sentinel error.
package ckpt
