package imgfmt

// This file holds the on-disk constants of the image: ELF header values, note owners and types, the
// sizes of every fixed record, and the limits a reader enforces. docs/image-format.md describes the
// same numbers; spec_test.go checks that the two agree.

// Page and chunk sizes.
const (
	// PageSize is the granularity of mappings, segment data offsets and holes.
	PageSize = 4096
	// chunkSize is how much mapping data the encoder reads from Mapping.Contents at a time.
	chunkSize = 1 << 20
)

// ELF header values (ELF64, little-endian, ET_CORE, EM_X86_64).
const (
	elfHeaderSize = 64
	phdrSize      = 56

	elfClass64    = 2
	elfData2LSB   = 1
	elfVersion    = 1
	elfOSABINone  = 0
	elfTypeCore   = 4
	elfMachineX86 = 62

	ptLoad = 1
	ptNote = 4

	pfX = 1
	pfW = 2
	pfR = 4

	noteAlign = 4 // p_align of the PT_NOTE segment; notes are 4-byte aligned as in Linux cores.
)

// Note owners.
const (
	ownerCore  = "CORE"
	ownerLinux = "LINUX"
	// OwnerRunscCkpt is the owner name of runsc-ckpt's own notes.
	OwnerRunscCkpt = "RUNSC-CKPT"
)

// Standard Linux core note types (include/uapi/linux/elf.h).
const (
	ntPrstatus  = 1
	ntPrfpreg   = 2
	ntPrpsinfo  = 3
	ntAuxv      = 6
	ntSiginfo   = 0x53494749
	ntFile      = 0x46494c45
	ntX86XState = 0x202
)

// Types of runsc-ckpt's own notes (owner OwnerRunscCkpt). They avoid 1–6 and the other standard
// numbers because readelf decodes notes of unknown owners by type number alone.
const (
	NoteVersion = 0x52430001 // Format version and record counts; the first of our notes.
	NoteProcess = 0x52430002 // Process identity and credentials.
	NoteThread  = 0x52430003 // Per-thread state not in NT_PRSTATUS, one per thread.
	NoteSignals = 0x52430004 // Process-wide signal state.
	NoteFD      = 0x52430005 // One fd-table entry.
	NoteVM      = 0x52430006 // Address-space metadata.
	NoteMapping = 0x52430007 // One mapping's record, one per PT_LOAD, in the same order.
	NoteCwd     = 0x52430008 // The working directory; optional (format 1.1).
	NoteObject  = 0x52430009 // One kernel object; optional, after the cwd note (format 1.2).
)

// Format and note layout versions.
const (
	// FormatMajor is the image format version; a reader accepts only its own major version.
	FormatMajor = 1
	// FormatMinor is the newest image format revision this package reads and writes; a reader
	// accepts revisions up to its own. The encoder writes the lowest revision that can express the
	// process (imageMinor), so an image stays readable by older readers unless it needs a newer
	// note, and there is still exactly one image per Process. Revisions: 0 the original format;
	// 1 adds the optional cwd note; 2 the object notes; 3 core dumps and header pages; 4 parent and delta notes
	// (incremental images, parent.go); 5 unix sockets' accept queues (obj_unix_accept.go); 6 TCP listeners' accept
	// queues (obj_inet_accept.go).
	FormatMinor = 6
	// minorCwd is the first revision with the cwd note.
	minorCwd = 1
	// minorObjects is the first revision with object notes.
	minorObjects = 2
	// minorCoreDump is the first revision with the core-dump flag (versionFlagCoreDump) and with
	// stored header pages of reference mappings (mapFlagHeaderPage).
	minorCoreDump = 3
	// versionFlagCoreDump (version note flags bit 0, format 1.3) marks a core dump: NT_SIGINFO
	// follows thread 0's notes and every NT_PRSTATUS carries the signal (Process.CoreDump).
	versionFlagCoreDump = 1
	// noteLayoutVersion is the first field of each of our notes.
	noteLayoutVersion = 1
)

// Sizes of the fixed parts of notes' descriptors, in bytes.
const (
	prpsinfoSize   = 136
	prstatusSize   = 336
	prstatusRegOff = 112
	fxsaveSize     = 512
	siginfoSize    = 128
	xstateMinSize  = 576 // Legacy area (512) + XSAVE header (64).
	xstateXCR0Off  = 464 // Where Linux stores XCR0 in the software-reserved bytes of the legacy area.

	handleSize        = 48
	versionFixedSize  = 40
	processFixedSize  = 56
	threadSize        = 64
	signalsSize       = 2112
	fdFixedSize       = 80
	vmFixedSize       = 152
	mappingFixedSize  = 88
	cwdFixedSize      = 56
	objectFixedSize   = 24 // Layout, kind, id, fd count, key; then fds and the body.
	objectFDSize      = 8
	numGeneralRegs    = 27
	numSignals        = 64
	numItimers        = 3
	userRegsSize      = numGeneralRegs * 8
	nfileHeaderSize   = 16
	nfileEntrySize    = 24
	auxEntrySize      = 16
	noteHeaderSize    = 12
	maxNoteOwnerBytes = 16
)

// Flag bits in our notes. All other bits are reserved and must be zero.
const (
	fdFlagIsImage   = 1 << 0
	fdFlagHasHandle = 1 << 1

	vmFlagHasExe = 1 << 0

	mapFlagShared    = 1 << 0
	mapFlagGrowsDown = 1 << 1
	mapFlagHasFile   = 1 << 2
	// mapFlagHeaderPage (format 1.3): a reference mapping whose first page is stored too.
	mapFlagHeaderPage = 1 << 3
)

// Limits enforced by the encoder and the decoder. They bound what a reader allocates and what a thaw
// has to install; the decoder additionally bounds every allocation by the input's size.
const (
	// MaxUserAddress is the end of the x86-64 user address range (exclusive); every mapping, the vDSO
	// and the VM ranges lie below it. The thaw checks the running platform's tighter bound.
	MaxUserAddress = 0x7ffffffff000
	// MaxThreads is the largest thread count an image may hold.
	MaxThreads = 8192
	// MaxMappings is the largest mapping count (Linux's default vm.max_map_count); it keeps e_phnum
	// below PN_XNUM so no section-header extension is needed.
	MaxMappings = 65530
	// MaxFDs bounds both the fd count and fd numbers (Linux's default fs.nr_open).
	MaxFDs = 1 << 20
	// MaxPathLen is the longest path, mapping name or fd description, in bytes (PATH_MAX).
	MaxPathLen = 4096
	// MaxNameLen is the longest process name (comm without its NUL).
	MaxNameLen = 15
	// MaxArgsLen is the longest pr_psargs (without its NUL).
	MaxArgsLen = 79
	// MaxPlatformLen is the longest platform name.
	MaxPlatformLen = 64
	// MaxGroups is the largest supplementary group count (NGROUPS_MAX).
	MaxGroups = 65536
	// MaxAuxv is the largest auxiliary-vector entry count (without AT_NULL).
	MaxAuxv = 256
	// MaxXStateSize is the largest XSAVE area accepted.
	MaxXStateSize = 64 << 10
	// MaxObjects is the largest object count an image may hold.
	MaxObjects = MaxFDs + 65536
	// MaxObjectData bounds the bytes one object carries in its note (buffered pipe or socket data,
	// an unlinked file's or memfd's contents).
	MaxObjectData = 64 << 20
	// MaxNotesSize bounds the PT_NOTE segment.
	MaxNotesSize = 256 << 20
)
