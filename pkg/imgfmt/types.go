package imgfmt

import "io"

// This file holds the plain Go model of a frozen process. It is the contract between the capture side
// (pkg/sentry/ckpt freeze), the codec (this package) and the restore side (pkg/sentry/ckpt thaw).
// Field additions are fine; renames and removals must be made in all three at once.

// Process is everything a thaw needs to turn a process into the frozen one.
type Process struct {
	Info     ProcessInfo
	Creds    Creds
	Threads  []Thread  // Threads[0] is the thread that froze (or received SIGCKPT); at least one.
	Mappings []Mapping // Sorted by Start, non-overlapping, page-aligned; vvar/vDSO excluded (see VM).
	Files    []File    // Sorted by FD, no duplicates.
	Signals  Signals
	VM       VMInfo
	Auxv     []AuxEntry // The process's auxiliary vector (NT_AUXV), without the AT_NULL terminator.
	SigInfo  *SigInfo   // The signal that triggered the freeze (NT_SIGINFO), nil for sys_checkpoint.

	// CoreDump marks the image of a process killed by a signal (format 1.3, version flag bit 0):
	// its notes are laid out as Linux lays out a core's, so that gdb and elfutils show the signal
	// of every thread and thread 0's siginfo ($_siginfo): NT_SIGINFO directly follows thread 0's
	// notes and every NT_PRSTATUS carries the signal in pr_cursig. Requires SigInfo.
	CoreDump bool
	// Cwd is the process's working directory: its absolute path in the sandbox's mount namespace
	// (with " (deleted)" appended if it was removed) and its attributes at freeze. nil when not
	// recorded (images of format 1.0); a thaw then keeps the thawer's working directory.
	Cwd *FileHandle
	// Objects are the kernel objects the thaw rebuilds (format 1.2): pipes, sockets, event fds,
	// unlinked files, timers, IPC. Ordered by ID.
	Objects []Object
	// Parent, when not nil, makes the image incremental (format 1.4, docs/incremental.md): its
	// Delta mappings store only some pages, the others are the parent image's at the same
	// addresses.
	Parent *ParentRef
}

// imageMinor is the format revision an image of p is written with: the lowest that can express it.
func imageMinor(p *Process) uint32 {
	if hasTCPAcceptQueue(p) {
		return minorTCPAcceptQueue
	}
	if hasAcceptQueue(p) {
		return minorAcceptQueue
	}
	if p.Parent != nil {
		return minorIncremental
	}
	if p.CoreDump {
		return minorCoreDump
	}
	for i := range p.Mappings {
		if p.Mappings[i].HeaderPage {
			return minorCoreDump
		}
	}
	if len(p.Objects) > 0 {
		return minorObjects
	}
	if p.Cwd != nil {
		return minorCwd
	}
	return 0
}

// ProcessInfo identifies the process (NT_PRPSINFO and the version note).
type ProcessInfo struct {
	Name           string // comm, at most 15 bytes.
	Args           string // argv joined by spaces, truncated to 79 bytes (pr_psargs).
	PID, PPID      int32  // In the sandbox's root PID namespace as seen by the freezer.
	PGID, SID      int32
	FreezeTimeNano int64  // Wall clock of the freeze, Unix nanoseconds.
	Platform       string // gVisor platform that ran the process ("systrap", "ptrace"); informational.
}

// Creds are the process credentials at freeze time. A thaw runs with the thawer's credentials; these
// are recorded for inspection and policy checks.
type Creds struct {
	UID, EUID, SUID, FSUID uint32
	GID, EGID, SGID, FSGID uint32
	Groups                 []uint32
}

// Regs are the general registers in Linux user_regs_struct order (the pr_reg of NT_PRSTATUS).
type Regs struct {
	R15, R14, R13, R12, Rbp, Rbx, R11, R10, R9, R8  uint64
	Rax, Rcx, Rdx, Rsi, Rdi, OrigRax, Rip, Cs       uint64
	Eflags, Rsp, Ss, FsBase, GsBase, Ds, Es, Fs, Gs uint64
}

// Thread is one thread of the process.
type Thread struct {
	TID        int32
	Regs       Regs   // With any interrupted-syscall restart already applied (Rip rewound, Rax = OrigRax).
	FPRegs     []byte // The 512-byte FXSAVE area (NT_PRFPREG); empty if unknown.
	XState     []byte // The XSAVE area as Linux writes NT_X86_XSTATE (XCR0 at byte 464); may be empty.
	SigMask    uint64 // Blocked signals; bit n-1 is signal n.
	SigPending uint64 // Signals pending on this thread only.
	AltStack   AltStack
	ClearTID   uint64 // set_tid_address / CLONE_CHILD_CLEARTID address, 0 if unknown.
	RobustList uint64 // set_robust_list head, 0 if none.
}

// AltStack is a thread's sigaltstack (stack_t).
type AltStack struct {
	Addr  uint64
	Flags int32
	Size  uint64
}

// Prot is a mapping's protection: the PROT_* bits.
type Prot uint32

// Protection bits (as mmap's PROT_*).
const (
	ProtRead  Prot = 1
	ProtWrite Prot = 2
	ProtExec  Prot = 4
)

// MappingKind says how a mapping's contents are kept in the image.
type MappingKind uint32

// Mapping kinds.
const (
	// MapContent: the bytes are in the image (PT_LOAD p_filesz == p_memsz); all-zero pages are holes.
	MapContent MappingKind = 1
	// MapReference: a private file mapping identical to its file; File names it, no bytes stored.
	MapReference MappingKind = 2
	// MapZero: never touched or entirely zero anonymous memory; no bytes stored, zero-filled on thaw.
	MapZero MappingKind = 3
	// MapObject (format 1.2): a shared mapping of a file-data object (an unlinked file, a memfd,
	// shared anonymous memory); no bytes stored, the object carries them and lists the mapping's
	// start. A thaw maps it shared from the rebuilt file at FileOffset.
	MapObject MappingKind = 4
)

// Mapping is one virtual memory area.
type Mapping struct {
	Start, End uint64 // [Start, End), page-aligned.
	Prot       Prot
	Shared     bool // MAP_SHARED at freeze: a named file (File set) is mapped shared again where it can be, else a private copy.
	GrowsDown  bool
	Kind       MappingKind
	Name       string      // As in /proc/pid/maps: "[heap]", "[stack]", "[anon:x]", a path, or "".
	FileOffset uint64      // Offset into File for file-backed mappings.
	File       *FileHandle // Backing file, nil for anonymous memory.

	// HeaderPage (MapReference only, format 1.3) stores the mapping's first page as well, as Linux
	// cores keep the first page of each ELF file mapping: debuggers (eu-unstrip, eu-stack, gdb)
	// read the ELF header and the build-id note from it. A thaw ignores it: the mapping is reopened
	// by its handle. Contents supplies the page.
	HeaderPage bool

	// Delta (a private MapContent mapping of an image with a Parent, format 1.4) stores only the
	// pages Runs lists; the others are the parent's bytes at the same addresses. Contents then
	// supplies the stored pages only, concatenated in run order.
	Delta bool
	Runs  []PageRun

	// Contents supplies the bytes [0, End-Start) to the encoder for MapContent, and [0, PageSize)
	// for a HeaderPage reference mapping. Reads of pages that are not resident may return zeros
	// without touching them. Decode (the ReaderAt decoder) sets it to the stored bytes' section of
	// the image; the stream decoder leaves it nil.
	Contents io.ReaderAt

	// DataOffset is where the decoder found the stored bytes of a MapContent or HeaderPage mapping
	// in the image (page-aligned). Unused by the encoder.
	DataOffset int64
}

// StoredSize is how many bytes of m the image stores: all of a MapContent mapping, the first page
// of a HeaderPage reference mapping, none of any other (its PT_LOAD's p_filesz).
func (m *Mapping) StoredSize() uint64 {
	switch {
	case m.Kind == MapContent && m.Delta:
		return deltaPages(m) * PageSize
	case m.Kind == MapContent:
		return m.End - m.Start
	case m.Kind == MapReference && m.HeaderPage:
		return PageSize
	}
	return 0
}

// FileHandle identifies a file inside the sandbox at freeze time, so a thaw can reopen it and verify
// it is the same, unchanged file (pkg/vfsfh).
type FileHandle struct {
	Path               string // Absolute path in the sandbox's mount namespace at freeze.
	DevMajor, DevMinor uint32
	Ino                uint64
	Mode               uint32 // st_mode: type and permission bits.
	Size               int64
	MtimeNano          int64
	CtimeNano          int64
}

// FileKind is the kind of object behind a file descriptor.
type FileKind uint32

// File kinds.
const (
	FileRegular   FileKind = 1
	FileDirectory FileKind = 2
	FileCharDev   FileKind = 3
	FileBlockDev  FileKind = 4
	FileFIFO      FileKind = 5 // A named pipe or an anonymous pipe.
	FileSocket    FileKind = 6
	FileSymlink   FileKind = 7 // An O_PATH fd on a symlink.
	FileEventFD   FileKind = 8
	FileOther     FileKind = 9 // Any other anonymous inode (epoll, timerfd, signalfd, inotify, ...).
)

// File is one entry of the fd table.
type File struct {
	FD          int32
	FDFlags     uint32 // FD_CLOEXEC.
	StatusFlags uint32 // O_ACCMODE, O_APPEND, O_NONBLOCK, ... as fcntl(F_GETFL) reports.
	Offset      int64  // -1 when not seekable.
	Kind        FileKind
	Handle      *FileHandle // For kinds that can be reopened by path (regular, directory, devices).
	Desc        string      // What /proc/pid/fd/N reads, e.g. "pipe:[12]", "anon_inode:[eventfd]".
	IsImage     bool        // This fd is the image being written (DragonFly's CKFIF_ISCKPTFD).
}

// Signals is the process-wide signal state.
type Signals struct {
	Actions   [64]SigAction // Actions[n-1] is signal n.
	Pending   uint64        // Signals pending on the thread group.
	Itimers   [3]Itimer     // ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF.
	PdeathSig int32
}

// SigAction is a kernel struct sigaction.
type SigAction struct {
	Handler, Flags, Restorer, Mask uint64
}

// Itimer is an interval timer; zero Value means disarmed.
type Itimer struct {
	IntervalNano, ValueNano int64
}

// VMInfo is address-space metadata that is not a mapping.
type VMInfo struct {
	BrkStart, BrkEnd   uint64
	ArgvStart, ArgvEnd uint64
	EnvvStart, EnvvEnd uint64
	VDSOBase           uint64   // AT_SYSINFO_EHDR; [vvar] is the page below.
	VDSOSize           uint64   // Page-rounded size of the vDSO.
	VDSOHash           [32]byte // SHA-256 of the vDSO image (gVisor's vdsodata.Binary).
	Exe                *FileHandle
}

// AuxEntry is one auxiliary-vector entry.
type AuxEntry struct {
	Key, Value uint64
}

// SigInfo is the signal that triggered a freeze or killed the process (NT_SIGINFO, Linux
// siginfo_t layout). Its union holds either the sender (PID, UID) or, for a fault (HasAddr), the
// faulting address (Addr), never both.
type SigInfo struct {
	Signo, Errno, Code int32
	PID                int32
	UID                uint32
	// Addr is si_addr, the faulting address; only when HasAddr(Signo, Code), else 0.
	Addr uint64
}

// Signal numbers and codes that decide the layout of siginfo_t's union.
const (
	sigILL  = 4
	sigTRAP = 5
	sigBUS  = 7
	sigFPE  = 8
	sigSEGV = 11
)

// HasAddr reports whether a siginfo_t of signal signo with code code carries si_addr in its
// union (at byte 16) instead of the sender's pid and uid: a fault signal (SIGILL, SIGTRAP,
// SIGBUS, SIGFPE, SIGSEGV) with a signal-specific code (0 < code < SI_KERNEL), as Linux's
// siginfo_layout decides.
func HasAddr(signo, code int32) bool {
	switch signo {
	case sigILL, sigTRAP, sigBUS, sigFPE, sigSEGV:
		return code > 0 && code < siKernel
	}
	return false
}

// siKernel is SI_KERNEL, the code of a signal the kernel sends without a specific cause.
const siKernel = 0x80
