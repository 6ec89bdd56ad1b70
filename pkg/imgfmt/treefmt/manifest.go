package treefmt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Identification of a manifest.
const (
	// FormatName is the manifest's "format" value.
	FormatName = "runsc-ckpt-tree"
	// Version is the manifest version a tree checkpoint is written with. A reader accepts every
	// version up to MaxVersion; fields are only ever added within a major version. Version 2 adds
	// Filesystems.
	Version = 2
	// VersionParent (3) adds Parent and Process.ParentImage: the version of an incremental
	// checkpoint's manifest (parent.go); a checkpoint without a parent stays at Version.
	VersionParent = 3
	// VersionStopped (4) adds Process.Stopped: the version of a manifest with a stopped process,
	// so that a build that would restore it running refuses it; others stay at their version.
	VersionStopped = 4
	// VersionDigest (5) adds Process.ImageDigest and FilesystemArchive.Digest, digests that name
	// their algorithm (manifest_digest.go): the version of a manifest that has one, so that a
	// build that knows only SHA-256 refuses it instead of skipping the check.
	VersionDigest = 5
	// MaxVersion is the newest manifest version this package reads.
	MaxVersion = VersionDigest
	// ManifestName is the manifest's file name in a checkpoint directory.
	ManifestName = "manifest.json"
	// maxManifest bounds the manifest a reader accepts.
	maxManifest = 64 << 20
)

// Manifest describes a process-tree checkpoint: every process with its place in the tree, what its
// processes share, and where the sandbox was.
type Manifest struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Created is the wall-clock time of the freeze (RFC 3339, UTC).
	Created string `json:"created"`
	// Root is the pid the tree was frozen from (that process and its descendants), or 0 when every
	// process of the PID namespace was (a whole container).
	Root int32 `json:"root"`
	// Hostname is the sandbox's UTS hostname at the freeze.
	Hostname string `json:"hostname"`
	// Platform is the gVisor platform that ran the processes (informational).
	Platform string `json:"platform,omitempty"`
	// RuntimeVersion is the runsc-ckpt build that froze the tree; GVisorVersion the gVisor module
	// version it was built on.
	RuntimeVersion string `json:"runtime_version,omitempty"`
	GVisorVersion  string `json:"gvisor_version,omitempty"`
	// SpecSHA256 is the SHA-256 of the container's OCI config.json, when the freeze was taken by
	// the host command (which knows the spec); empty otherwise.
	SpecSHA256 string `json:"spec_sha256,omitempty"`
	// Processes is sorted by PID, parents not necessarily before children.
	Processes []Process `json:"processes"`
	// Files are the open file descriptions referred to by more than one fd (in one process or
	// across processes): the fds share the offset and status flags.
	Files []OpenFile `json:"shared_files,omitempty"`
	// Objects are the kernel objects without a path (pipes, sockets, eventfds, ...) that more than
	// one process refers to, through the same or through different open file descriptions.
	Objects []Object `json:"shared_objects,omitempty"`
	// Filesystems are the archived in-sandbox filesystems (tmpfs mounts, the rootfs overlay's
	// upper layer) of a whole-container checkpoint (version 2; tmpfs.go).
	Filesystems []FilesystemArchive `json:"filesystems,omitempty"`
	// Parent is the checkpoint this one is incremental against (version 3; parent.go): the
	// images that name a ParentImage store only the pages that differ from it.
	Parent *ParentDir `json:"parent,omitempty"`
	// Clock is the sandbox's clocks at the freeze, once every process was stopped; nil in a
	// manifest written before it was recorded. Optional within every version: a reader that
	// does not know it restores with the new sandbox's own clock, as before (clock.go).
	Clock *Clock `json:"clock,omitempty"`
	// StdioForeground is the foreground process group (its id) of the container's terminal at
	// the freeze, when the container's stdio was one ("terminal": true: the runtime's pty,
	// imported by gVisor as a host TTY file); 0 when it was not, or in a manifest written
	// before it was recorded. Optional within every version: a restore without it leaves the
	// restored init's group in the foreground.
	StdioForeground int32 `json:"stdio_foreground_pgid,omitempty"`
}

// Process is one process of the tree.
type Process struct {
	PID  int32 `json:"pid"`
	PPID int32 `json:"ppid"` // 0: no parent in the namespace (the init, or started by exec).
	PGID int32 `json:"pgid"`
	SID  int32 `json:"sid"`
	// TIDs are the thread ids, the leader's (PID) first unless the leader thread has exited.
	// Empty for a zombie.
	TIDs []int32 `json:"tids,omitempty"`
	Comm string  `json:"comm"`
	// Image is the file name of the process's ELF image in the directory; empty for a zombie.
	Image string `json:"image,omitempty"`
	// ImageSize is the image's size in bytes (holes included); ImageSHA256 the sparse SHA-256 of
	// its bytes (hex), or ImageDigest (version 5) its sparse digest with the algorithm named
	// ("crc32c-sparse:89abcdef"): one of the two (manifest_digest.go). A verifying restore
	// refuses an image that does not match.
	ImageSize   int64  `json:"image_size,omitempty"`
	ImageSHA256 string `json:"image_sha256,omitempty"`
	ImageDigest string `json:"image_digest,omitempty"`
	// Zombie is set for a process that had exited and was not reaped yet: its status for wait.
	Zombie *ExitStatus `json:"zombie,omitempty"`
	// FilesOf, FSOf and VMOf name the lowest pid this process shares its fd table (CLONE_FILES),
	// filesystem context (CLONE_FS: cwd, root, umask) or address space (CLONE_VM without
	// CLONE_THREAD, vfork) with; 0 when not shared.
	FilesOf int32 `json:"files_of,omitempty"`
	FSOf    int32 `json:"fs_of,omitempty"`
	VMOf    int32 `json:"vm_of,omitempty"`
	// FDs are the process's file descriptors with the ids of their open file description and, for
	// objects without a path, of the object.
	FDs []FD `json:"fds,omitempty"`
	// ParentImage (version 3) is the image of the same pid in the Parent checkpoint that Image is
	// an incremental image against; empty for a complete image (a process new since the parent).
	ParentImage string `json:"parent_image,omitempty"`
	// Stopped (version 4) is set for a process that was in a group stop (SIGSTOP or job
	// control) when it was frozen: the restore brings it back stopped.
	Stopped *Stop `json:"stopped,omitempty"`
}

// Stop is how a process was stopped.
type Stop struct {
	// Signal is the signal that stopped it: SIGSTOP (19), SIGTSTP (20), SIGTTIN (21) or
	// SIGTTOU (22).
	Signal int `json:"signal"`
}

// ExitStatus is a zombie's status as wait(2) reports it: an exit code or a terminating signal.
type ExitStatus struct {
	Code   int  `json:"code"`
	Signal int  `json:"signal,omitempty"`
	Core   bool `json:"core,omitempty"`
}

// FD is one file descriptor of a process.
type FD struct {
	FD   int32  `json:"fd"`
	Kind string `json:"kind"`
	Desc string `json:"desc,omitempty"`
	// File is the id of the open file description ("f1", ...): fds with the same id, in this or
	// other processes, share one description (offset, status flags).
	File string `json:"file"`
	// Object is the id of the object behind an fd without a path ("o1", ...): a pipe's two ends,
	// or several descriptions of one socket, have the same object id.
	Object string `json:"object,omitempty"`
	// Stdio is set when the description is the container's stdio N (0–2) as the runtime gave it
	// at the container's start, whatever fd number it sits at now (a shell that ran `exec 3>&1
	// >>log` has stdout on fd 3). A restore gives such fds the new container's stdio N. When no
	// fd of a manifest has it (written before it existed, or a tree without the runtime's stdio),
	// the root process's fds 0–2 are taken as the stdio.
	Stdio *int32 `json:"stdio,omitempty"`
}

// FDRef names one fd of one process.
type FDRef struct {
	PID int32 `json:"pid"`
	FD  int32 `json:"fd"`
}

// OpenFile is an open file description shared by several fds.
type OpenFile struct {
	ID   string  `json:"id"`
	Kind string  `json:"kind"`
	Desc string  `json:"desc,omitempty"`
	FDs  []FDRef `json:"fds"`
}

// Object is a kernel object without a path shared by several processes.
type Object struct {
	ID    string   `json:"id"`
	Kind  string   `json:"kind"`
	Desc  string   `json:"desc,omitempty"`
	Files []string `json:"files"` // Ids of the open file descriptions on it.
	FDs   []FDRef  `json:"fds"`
}

// Stdio returns the open file descriptions that were the container's stdio, each with its stdio
// fd number: those marked (FD.Stdio), or, when no fd is, those of root's fds 0–2 (root is the
// tree's root process; nil: none).
func (m *Manifest) Stdio(root *Process) map[string]int32 {
	stdio := make(map[string]int32)
	for _, p := range m.Processes {
		for _, fd := range p.FDs {
			if fd.Stdio != nil {
				stdio[fd.File] = *fd.Stdio
			}
		}
	}
	if len(stdio) > 0 || root == nil {
		return stdio
	}
	for _, fd := range root.FDs {
		if fd.FD <= 2 {
			stdio[fd.File] = fd.FD
		}
	}
	return stdio
}

// ImageName is the file name of pid's image in a checkpoint directory.
func ImageName(pid int32) string { return fmt.Sprintf("pid-%d.img", pid) }

// ErrInvalid marks a manifest or directory that is malformed or inconsistent.
var ErrInvalid = errors.New("invalid tree checkpoint")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Encode writes m as indented JSON.
func (m *Manifest) Encode(w io.Writer) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// DecodeManifest reads and validates a manifest.
func DecodeManifest(r io.Reader) (*Manifest, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	if len(b) > maxManifest {
		return nil, invalidf("manifest larger than %d bytes", maxManifest)
	}
	var m Manifest
	d := json.NewDecoder(strings.NewReader(string(b)))
	if err := d.Decode(&m); err != nil {
		return nil, invalidf("manifest is not valid JSON: %v", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ReadManifest reads and validates dir's manifest.
func ReadManifest(dir string) (*Manifest, error) {
	f, err := os.Open(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := DecodeManifest(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestName), err)
	}
	return m, nil
}

// IsTreeDir reports whether dir holds a tree checkpoint: it has a manifest.json naming this format
// (it is not validated beyond that).
func IsTreeDir(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return false
	}
	var head struct {
		Format string `json:"format"`
	}
	return json.Unmarshal(b, &head) == nil && head.Format == FormatName
}

// Validate checks m's consistency: the format and version, each pid once, sane ids, an image name
// for every live process (a plain file name) and none for a zombie, parents, groups and sessions
// and sharing references that name processes of the manifest (or 0), fds once per process.
func (m *Manifest) Validate() error {
	if m.Format != FormatName {
		return invalidf("format %q, want %q", m.Format, FormatName)
	}
	if m.Version < 1 || m.Version > MaxVersion {
		return invalidf("manifest version %d not supported (this build reads 1 to %d)", m.Version, MaxVersion)
	}
	if len(m.Processes) == 0 {
		return invalidf("no processes")
	}
	if m.StdioForeground < 0 {
		return invalidf("stdio_foreground_pgid %d is negative", m.StdioForeground)
	}
	pids := make(map[int32]*Process, len(m.Processes))
	tids := make(map[int32]int32)
	images := make(map[string]int32)
	stdio := make(map[string]int32)
	for i := range m.Processes {
		p := &m.Processes[i]
		if p.PID <= 0 {
			return invalidf("process %d: pid must be positive", p.PID)
		}
		if _, dup := pids[p.PID]; dup {
			return invalidf("pid %d appears twice", p.PID)
		}
		pids[p.PID] = p
	}
	for i := range m.Processes {
		p := &m.Processes[i]
		if p.PPID < 0 || p.PGID <= 0 || p.SID <= 0 {
			return invalidf("pid %d: bad ppid/pgid/sid %d/%d/%d", p.PID, p.PPID, p.PGID, p.SID)
		}
		if p.PPID != 0 && pids[p.PPID] == nil && p.PID != m.Root {
			// A parent outside the set is only allowed for the tree's root.
			return invalidf("pid %d: parent %d is not in the checkpoint", p.PID, p.PPID)
		}
		if p.Zombie != nil {
			if p.Image != "" || len(p.TIDs) != 0 {
				return invalidf("pid %d: a zombie has no image and no threads", p.PID)
			}
		} else {
			if err := checkName(p.Image); err != nil {
				return invalidf("pid %d: image %q: %v", p.PID, p.Image, err)
			}
			if other, dup := images[p.Image]; dup {
				return invalidf("pids %d and %d name the same image %q", other, p.PID, p.Image)
			}
			images[p.Image] = p.PID
			if p.ImageSize <= 0 {
				return invalidf("pid %d: missing image size", p.PID)
			}
			if err := m.checkDigestFields(p.ImageSHA256, p.ImageDigest); err != nil {
				return invalidf("pid %d: image %s: %v", p.PID, p.Image, err)
			}
			if len(p.TIDs) == 0 {
				return invalidf("pid %d: a live process has threads", p.PID)
			}
		}
		if p.Stopped != nil {
			if m.Version < VersionStopped {
				return invalidf("pid %d: a stopped process needs manifest version %d, this one says %d", p.PID, VersionStopped, m.Version)
			}
			if p.Zombie != nil || p.Stopped.Signal < 19 || p.Stopped.Signal > 22 {
				return invalidf("pid %d: stopped by signal %d (a live process stopped by SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU)", p.PID, p.Stopped.Signal)
			}
		}
		for _, tid := range p.TIDs {
			if tid <= 0 {
				return invalidf("pid %d: bad tid %d", p.PID, tid)
			}
			if owner, dup := tids[tid]; dup {
				return invalidf("tid %d appears in pids %d and %d", tid, owner, p.PID)
			}
			tids[tid] = p.PID
		}
		for _, of := range []int32{p.FilesOf, p.FSOf, p.VMOf} {
			if of != 0 && (pids[of] == nil || of >= p.PID) {
				return invalidf("pid %d: sharing reference %d must name a lower pid of the checkpoint", p.PID, of)
			}
		}
		seen := make(map[int32]bool)
		for _, fd := range p.FDs {
			if fd.FD < 0 || seen[fd.FD] {
				return invalidf("pid %d: fd %d bad or listed twice", p.PID, fd.FD)
			}
			seen[fd.FD] = true
			if fd.Stdio != nil {
				if *fd.Stdio < 0 || *fd.Stdio > 2 {
					return invalidf("pid %d: fd %d: stdio %d is not 0, 1 or 2", p.PID, fd.FD, *fd.Stdio)
				}
				if n, ok := stdio[fd.File]; ok && n != *fd.Stdio {
					return invalidf("pid %d: fd %d: description %s is stdio %d and %d", p.PID, fd.FD, fd.File, n, *fd.Stdio)
				}
				stdio[fd.File] = *fd.Stdio
			}
		}
	}
	for pid, p := range pids {
		if p.Zombie == nil && len(p.TIDs) > 0 {
			if owner := tids[pid]; owner != pid {
				return invalidf("pid %d is also a thread of pid %d", pid, owner)
			}
		}
	}
	if err := m.validateFilesystems(images); err != nil {
		return err
	}
	return m.validateParent()
}

// checkName accepts a plain file name: no directory part, not "." or "..", not empty, not hidden.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case strings.ContainsAny(name, "/\x00"), name == ".", name == "..", strings.HasPrefix(name, "."):
		return errors.New("not a plain file name")
	case len(name) > 255:
		return errors.New("too long")
	}
	return nil
}

// SortProcesses sorts m's processes by pid.
func (m *Manifest) SortProcesses() {
	sort.Slice(m.Processes, func(i, j int) bool { return m.Processes[i].PID < m.Processes[j].PID })
}

// Process returns the process with pid, or nil.
func (m *Manifest) Process(pid int32) *Process {
	for i := range m.Processes {
		if m.Processes[i].PID == pid {
			return &m.Processes[i]
		}
	}
	return nil
}
