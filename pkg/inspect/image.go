package inspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// This file builds and renders the summary of one image that `runsc-ckpt inspect` prints: who the
// process was, its threads, mappings, fds, signal dispositions and totals.

// Summary describes an image for people (text) and programs (JSON).
type Summary struct {
	Format      string          `json:"format"`
	ImageBytes  int64           `json:"image_bytes"`
	StoredBytes int64           `json:"stored_bytes"` // On disk (holes excluded); -1 if unknown.
	Process     ProcessSummary  `json:"process"`
	Creds       CredsSummary    `json:"creds"`
	SigInfo     *SigInfoSummary `json:"siginfo,omitempty"`
	CoreDump    bool            `json:"core_dump,omitempty"` // The image of a process a signal killed.
	Parent      *ParentSummary  `json:"parent,omitempty"`    // The parent of an incremental image.
	Threads     []ThreadSummary `json:"threads"`
	Mappings    []MapSummary    `json:"mappings"`
	FDs         []FDSummary     `json:"fds"`
	Objects     []ObjectSummary `json:"objects"`
	Signals     SignalsSummary  `json:"signals"`
	VM          VMSummary       `json:"vm"`
	Totals      Totals          `json:"totals"`
}

// ProcessSummary identifies the frozen process.
type ProcessSummary struct {
	Name       string `json:"name"`
	Args       string `json:"args"`
	PID        int32  `json:"pid"`
	PPID       int32  `json:"ppid"`
	PGID       int32  `json:"pgid"`
	SID        int32  `json:"sid"`
	Platform   string `json:"platform"`
	FreezeTime string `json:"freeze_time"` // RFC 3339, UTC.
}

// CredsSummary is the credentials at freeze.
type CredsSummary struct {
	UID    uint32   `json:"uid"`
	EUID   uint32   `json:"euid"`
	SUID   uint32   `json:"suid"`
	FSUID  uint32   `json:"fsuid"`
	GID    uint32   `json:"gid"`
	EGID   uint32   `json:"egid"`
	SGID   uint32   `json:"sgid"`
	FSGID  uint32   `json:"fsgid"`
	Groups []uint32 `json:"groups"`
}

// SigInfoSummary is the signal that triggered the freeze.
type SigInfoSummary struct {
	Signal int32  `json:"signal"`
	Name   string `json:"name"`
	Code   int32  `json:"code"`
	PID    int32  `json:"pid"`
	UID    uint32 `json:"uid"`
	// Addr is the faulting address (si_addr) of a fault signal, else empty.
	Addr string `json:"addr,omitempty"`
}

// ThreadSummary is one thread's identity and where it stopped.
type ThreadSummary struct {
	TID        int32  `json:"tid"`
	RIP        string `json:"rip"`
	RSP        string `json:"rsp"`
	SigMask    string `json:"sigmask"`
	SigPending string `json:"sigpending"`
}

// MapSummary is one mapping.
type MapSummary struct {
	Start  string `json:"start"`
	End    string `json:"end"`
	Perms  string `json:"perms"` // As /proc/pid/maps: rwx and p (private) or s (shared at freeze).
	Kind   string `json:"kind"`  // content, reference or zero.
	Bytes  uint64 `json:"bytes"`
	Stored int64  `json:"stored_bytes"` // Bytes of this mapping's data on disk; -1 if unknown.
	Name   string `json:"name,omitempty"`
	File   string `json:"file,omitempty"` // Backing file's path.
}

// FDSummary is one fd-table entry.
type FDSummary struct {
	FD          int32  `json:"fd"`
	Kind        string `json:"kind"`
	Cloexec     bool   `json:"cloexec"`
	StatusFlags string `json:"status_flags"`
	Offset      int64  `json:"offset"`
	Desc        string `json:"desc"`
	File        string `json:"file,omitempty"`
	IsImage     bool   `json:"is_image,omitempty"`
}

// ObjectSummary is one kernel object (format 1.2).
type ObjectSummary struct {
	ID     uint32            `json:"id"`
	Kind   string            `json:"kind"`
	Key    string            `json:"key"`
	FDs    []int32           `json:"fds"`
	Detail string            `json:"detail"` // One line for people.
	State  imgfmt.ObjectBody `json:"state"`  // The kind's fields.
}

// SignalsSummary is the process-wide signal state: only non-default dispositions and armed timers.
type SignalsSummary struct {
	Actions   []ActionSummary `json:"actions"`
	Pending   string          `json:"pending"`
	PdeathSig int32           `json:"pdeathsig"`
	Itimers   []ItimerSummary `json:"itimers"`
}

// ActionSummary is one non-default signal disposition.
type ActionSummary struct {
	Signal  int    `json:"signal"`
	Name    string `json:"name"`
	Handler string `json:"handler"` // SIG_IGN or an address.
	Flags   string `json:"flags"`
	Mask    string `json:"mask"`
}

// ItimerSummary is one armed interval timer.
type ItimerSummary struct {
	Which    string `json:"which"`
	Value    string `json:"value"`
	Interval string `json:"interval"`
}

// VMSummary is address-space metadata.
type VMSummary struct {
	Brk  string `json:"brk"`
	VDSO string `json:"vdso"`
	Exe  string `json:"exe,omitempty"`
	Cwd  string `json:"cwd,omitempty"` // Working directory; empty in images of format 1.0.
}

// Totals adds things up.
type Totals struct {
	Threads        int    `json:"threads"`
	Mappings       int    `json:"mappings"`
	FDs            int    `json:"fds"`
	MappedBytes    uint64 `json:"mapped_bytes"`
	ContentBytes   uint64 `json:"content_bytes"`
	ReferenceBytes uint64 `json:"reference_bytes"`
	ZeroBytes      uint64 `json:"zero_bytes"`
	StoredBytes    int64  `json:"stored_bytes"` // Segment data on disk; -1 if unknown.
}

// Image decodes the image in r (size bytes) and summarizes it. When r is an *os.File, stored
// sizes come from SEEK_DATA/SEEK_HOLE; otherwise they are -1 (unknown).
func Image(r io.ReaderAt, size int64) (*Summary, error) {
	p, err := imgfmt.Decode(r, size)
	if err != nil {
		return nil, err
	}
	var stored func(off, n int64) int64
	if f, ok := r.(*os.File); ok {
		stored = func(off, n int64) int64 { return dataBytes(f, off, n) }
	}
	return Summarize(p, size, stored), nil
}

// Summarize builds the summary of a decoded process. stored, if not nil, returns how many of the n
// image bytes at off are actually on disk (-1 if unknown).
func Summarize(p *imgfmt.Process, size int64, stored func(off, n int64) int64) *Summary {
	if stored == nil {
		stored = func(int64, int64) int64 { return -1 }
	}
	hex := func(v uint64) string { return fmt.Sprintf("%#x", v) }
	s := &Summary{
		Format:      imgfmt.FormatVersion(p),
		ImageBytes:  size,
		StoredBytes: stored(0, size),
		Process: ProcessSummary{Name: p.Info.Name, Args: p.Info.Args, PID: p.Info.PID, PPID: p.Info.PPID, PGID: p.Info.PGID,
			SID: p.Info.SID, Platform: p.Info.Platform, FreezeTime: time.Unix(0, p.Info.FreezeTimeNano).UTC().Format(time.RFC3339Nano)},
		Creds: CredsSummary{UID: p.Creds.UID, EUID: p.Creds.EUID, SUID: p.Creds.SUID, FSUID: p.Creds.FSUID,
			GID: p.Creds.GID, EGID: p.Creds.EGID, SGID: p.Creds.SGID, FSGID: p.Creds.FSGID, Groups: p.Creds.Groups},
		Threads:  []ThreadSummary{},
		Mappings: []MapSummary{},
		FDs:      []FDSummary{},
		Objects:  []ObjectSummary{},
		Signals:  SignalsSummary{Actions: []ActionSummary{}, Itimers: []ItimerSummary{}, Pending: hex(p.Signals.Pending), PdeathSig: p.Signals.PdeathSig},
	}
	if s.Creds.Groups == nil {
		s.Creds.Groups = []uint32{}
	}
	s.Parent = summarizeParent(p)
	if si := p.SigInfo; si != nil {
		s.SigInfo = &SigInfoSummary{Signal: si.Signo, Name: SignalName(int(si.Signo)), Code: si.Code, PID: si.PID, UID: si.UID}
		s.CoreDump = p.CoreDump
		if imgfmt.HasAddr(si.Signo, si.Code) {
			s.SigInfo.Addr = fmt.Sprintf("%#x", si.Addr)
		}
	}
	for i := range p.Threads {
		t := &p.Threads[i]
		s.Threads = append(s.Threads, ThreadSummary{TID: t.TID, RIP: fmt.Sprintf("%#016x", t.Regs.Rip), RSP: fmt.Sprintf("%#016x", t.Regs.Rsp),
			SigMask: hex(t.SigMask), SigPending: hex(t.SigPending)})
	}
	tot := &s.Totals
	tot.Threads, tot.Mappings, tot.FDs = len(p.Threads), len(p.Mappings), len(p.Files)
	for i := range p.Mappings {
		m := &p.Mappings[i]
		ms := MapSummary{Start: fmt.Sprintf("%#x", m.Start), End: fmt.Sprintf("%#x", m.End), Perms: perms(m), Kind: kindName(m.Kind),
			Bytes: m.End - m.Start, Name: m.Name}
		if m.File != nil {
			ms.File = m.File.Path
		}
		tot.MappedBytes += ms.Bytes
		switch m.Kind {
		case imgfmt.MapContent:
			tot.ContentBytes += ms.Bytes
			ms.Stored = stored(m.DataOffset, int64(ms.Bytes))
			if m.Delta {
				ms.Kind = "delta"
				ms.Stored = stored(m.DataOffset, int64(m.StoredSize()))
			}
		case imgfmt.MapReference:
			tot.ReferenceBytes += ms.Bytes
			if m.HeaderPage {
				ms.Stored = stored(m.DataOffset, imgfmt.PageSize)
			}
		case imgfmt.MapZero:
			tot.ZeroBytes += ms.Bytes
		}
		s.Mappings = append(s.Mappings, ms)
	}
	tot.StoredBytes = 0
	for _, m := range s.Mappings {
		if m.Stored < 0 {
			tot.StoredBytes = -1
			break
		}
		tot.StoredBytes += m.Stored
	}
	for i := range p.Files {
		f := &p.Files[i]
		fs := FDSummary{FD: f.FD, Kind: fileKindName(f.Kind), Cloexec: f.FDFlags&1 != 0, StatusFlags: statusFlags(f.StatusFlags),
			Offset: f.Offset, Desc: f.Desc, IsImage: f.IsImage}
		if f.Handle != nil {
			fs.File = f.Handle.Path
		}
		s.FDs = append(s.FDs, fs)
	}
	for i := range p.Objects {
		o := &p.Objects[i]
		os := ObjectSummary{ID: o.ID, Kind: o.KindName(), Key: fmt.Sprintf("%#x", o.Key), FDs: []int32{}, Detail: o.Detail(), State: o.Body}
		for _, f := range o.FDs {
			os.FDs = append(os.FDs, f.FD)
		}
		s.Objects = append(s.Objects, os)
	}
	for i, a := range p.Signals.Actions {
		if a == (imgfmt.SigAction{}) {
			continue
		}
		h := hex(a.Handler)
		switch a.Handler {
		case 0:
			h = "SIG_DFL"
		case 1:
			h = "SIG_IGN"
		}
		s.Signals.Actions = append(s.Signals.Actions, ActionSummary{Signal: i + 1, Name: SignalName(i + 1), Handler: h, Flags: hex(a.Flags), Mask: hex(a.Mask)})
	}
	for i, it := range p.Signals.Itimers {
		if it.ValueNano == 0 {
			continue
		}
		s.Signals.Itimers = append(s.Signals.Itimers, ItimerSummary{Which: []string{"real", "virtual", "prof"}[i],
			Value: time.Duration(it.ValueNano).String(), Interval: time.Duration(it.IntervalNano).String()})
	}
	vm := &p.VM
	s.VM = VMSummary{Brk: fmt.Sprintf("[%#x, %#x)", vm.BrkStart, vm.BrkEnd), VDSO: fmt.Sprintf("[%#x, %#x) sha256 %x", vm.VDSOBase, vm.VDSOBase+vm.VDSOSize, vm.VDSOHash[:8])}
	if vm.Exe != nil {
		s.VM.Exe = vm.Exe.Path
	}
	if p.Cwd != nil {
		s.VM.Cwd = p.Cwd.Path
	}
	return s
}

// WriteJSON writes s as indented JSON.
func (s *Summary) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(s)
}

// WriteText writes s for people.
func (s *Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	pr := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	size := func(n int64) string {
		if n < 0 {
			return "?"
		}
		return humanBytes(uint64(n))
	}
	p := &s.Process
	pr("image:\t%s (%d bytes), %s stored on disk, format %s\n", humanBytes(uint64(s.ImageBytes)), s.ImageBytes, size(s.StoredBytes), s.Format)
	pr("process:\t%s (pid %d, ppid %d, pgid %d, sid %d) args %q\n", imgfmt.Printable(p.Name), p.PID, p.PPID, p.PGID, p.SID, p.Args)
	pr("frozen:\t%s on %s\n", p.FreezeTime, p.Platform)
	if pa := s.Parent; pa != nil {
		pr("parent:\t%s (%d bytes, frozen %s); %d delta mappings store %s of memory\n", pa.Path, pa.Size, pa.FreezeTime, pa.DeltaMappings, humanBytes(pa.DeltaBytes))
	}
	c := &s.Creds
	pr("creds:\tuid %d euid %d suid %d fsuid %d, gid %d egid %d sgid %d fsgid %d, groups %v\n",
		c.UID, c.EUID, c.SUID, c.FSUID, c.GID, c.EGID, c.SGID, c.FSGID, c.Groups)
	if si := s.SigInfo; si != nil {
		if s.CoreDump {
			pr("core:\tdump of a process killed by %s\n", imgfmt.Printable(si.Name))
		}
		if si.Addr != "" {
			pr("signal:\t%s (%d) code %d at address %s\n", imgfmt.Printable(si.Name), si.Signal, si.Code, si.Addr)
		} else {
			pr("signal:\t%s (%d) code %d from pid %d uid %d\n", imgfmt.Printable(si.Name), si.Signal, si.Code, si.PID, si.UID)
		}
	}
	pr("vm:\tbrk %s, vdso %s, exe %s\n", s.VM.Brk, s.VM.VDSO, imgfmt.Printable(s.VM.Exe))
	if s.VM.Cwd != "" {
		pr("cwd:\t%s\n", imgfmt.Printable(s.VM.Cwd))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nthreads (%d):\n", len(s.Threads))
	pr("  TID\tRIP\tRSP\tBLOCKED\tPENDING\n")
	for _, t := range s.Threads {
		pr("  %d\t%s\t%s\t%s\t%s\n", t.TID, t.RIP, t.RSP, t.SigMask, t.SigPending)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nmappings (%d):\n", len(s.Mappings))
	pr("  START\tEND\tPERMS\tKIND\tSIZE\tSTORED\tNAME\tFILE\n")
	for _, m := range s.Mappings {
		stored := "-"
		if m.Kind == "content" || m.Kind == "delta" {
			stored = size(m.Stored)
		}
		file := m.File
		if file != "" && file == m.Name {
			file = "(same)"
		}
		pr("  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Start, m.End, m.Perms, m.Kind, humanBytes(m.Bytes), stored, imgfmt.Printable(m.Name), imgfmt.Printable(file))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nfds (%d):\n", len(s.FDs))
	pr("  FD\tKIND\tFLAGS\tOFFSET\tDESCRIPTION\n")
	for _, f := range s.FDs {
		flags := f.StatusFlags
		if f.Cloexec {
			flags += "|CLOEXEC"
		}
		desc := f.Desc
		if f.IsImage {
			desc += " (this image)"
		}
		pr("  %d\t%s\t%s\t%d\t%s\n", f.FD, f.Kind, flags, f.Offset, imgfmt.Printable(desc))
	}
	tw.Flush()

	if len(s.Objects) > 0 {
		fmt.Fprintf(w, "\nobjects (%d):\n", len(s.Objects))
		pr("  ID\tKIND\tFDS\tSTATE\n")
		for _, o := range s.Objects {
			fds := fmt.Sprint(o.FDs)
			pr("  %d\t%s\t%s\t%s\n", o.ID, o.Kind, fds[1:len(fds)-1], imgfmt.Printable(o.Detail))
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nsignals: pending %s, pdeathsig %d, %d non-default dispositions\n", s.Signals.Pending, s.Signals.PdeathSig, len(s.Signals.Actions))
	if len(s.Signals.Actions) > 0 {
		pr("  SIGNAL\tHANDLER\tFLAGS\tMASK\n")
		for _, a := range s.Signals.Actions {
			pr("  %s (%d)\t%s\t%s\t%s\n", a.Name, a.Signal, a.Handler, a.Flags, a.Mask)
		}
	}
	for _, it := range s.Signals.Itimers {
		pr("  itimer %s: value %s, interval %s\n", it.Which, it.Value, it.Interval)
	}
	tw.Flush()

	t := &s.Totals
	_, err := fmt.Fprintf(w, "\ntotals: %d threads, %d mappings, %d fds; %s mapped = %s content + %s by reference + %s zero; %s of segment data stored\n",
		t.Threads, t.Mappings, t.FDs, humanBytes(t.MappedBytes), humanBytes(t.ContentBytes), humanBytes(t.ReferenceBytes), humanBytes(t.ZeroBytes), size(t.StoredBytes))
	return err
}

// dataBytes returns how many of the n bytes at off in f are data rather than holes, or -1.
func dataBytes(f *os.File, off, n int64) int64 {
	const seekData, seekHole = 3, 4
	end := off + n
	var total int64
	for pos := off; pos < end; {
		d, err := f.Seek(pos, seekData)
		if errors.Is(err, syscall.ENXIO) || (err == nil && d >= end) {
			break
		}
		if err != nil {
			return -1
		}
		h, err := f.Seek(d, seekHole)
		if err != nil {
			return -1
		}
		total += min(h, end) - d
		pos = h
	}
	return total
}

func perms(m *imgfmt.Mapping) string {
	b := []byte("---p")
	if m.Prot&imgfmt.ProtRead != 0 {
		b[0] = 'r'
	}
	if m.Prot&imgfmt.ProtWrite != 0 {
		b[1] = 'w'
	}
	if m.Prot&imgfmt.ProtExec != 0 {
		b[2] = 'x'
	}
	if m.Shared {
		b[3] = 's'
	}
	return string(b)
}

func kindName(k imgfmt.MappingKind) string {
	switch k {
	case imgfmt.MapContent:
		return "content"
	case imgfmt.MapReference:
		return "reference"
	case imgfmt.MapZero:
		return "zero"
	case imgfmt.MapObject:
		return "object"
	}
	return fmt.Sprintf("kind%d", k)
}

func fileKindName(k imgfmt.FileKind) string {
	if name, ok := k.Name(); ok {
		return name
	}
	return fmt.Sprintf("kind%d", k)
}

// statusFlags renders F_GETFL flags.
func statusFlags(f uint32) string {
	acc := []string{"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"}[f&3]
	parts := []string{acc}
	for _, fl := range []struct {
		bit  uint32
		name string
	}{{0o2000, "O_APPEND"}, {0o4000, "O_NONBLOCK"}, {0o4010000, "O_SYNC"}, {0o40000, "O_DIRECT"}, {0o10000000, "O_PATH"}} {
		if f&fl.bit == fl.bit {
			parts = append(parts, fl.name)
		}
	}
	return strings.Join(parts, "|")
}

var signalNames = [...]string{"", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL",
	"SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP",
	"SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS"}

// SignalName returns a signal's name: SIGHUP … SIGSYS, SIGCKPT (62), SIGCKPTEXIT (63), SIGRTMIN+n.
func SignalName(sig int) string {
	switch {
	case sig > 0 && sig < len(signalNames):
		return signalNames[sig]
	case sig == ckptabi.SIGCKPT:
		return "SIGCKPT"
	case sig == ckptabi.SIGCKPTEXIT:
		return "SIGCKPTEXIT"
	case sig >= 32 && sig <= 64:
		return fmt.Sprintf("SIGRTMIN+%d", sig-32)
	}
	return fmt.Sprintf("SIG%d", sig)
}

// humanBytes renders n with a binary unit.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
