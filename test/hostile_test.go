package test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// The catalogue of hostile images (issue 13, docs/security.md "Hostile images"): a real image of
// hostile_thaw, frozen by root, is crafted into one image per entry (hostile_mutate_test.go), and
// an unprivileged guest (uid and gid 65534, in an OCI container) thaws each one in a child of its
// own. Every entry must fail with its documented errno, leaving the caller alive with its own
// credentials, or (for the credential entries) thaw into a program that runs with the thawer's
// credentials and cannot open a file only root may read. The sentry's memory is measured around
// the thaws: the allocation bombs must not make it grow by what they claim.

// hostileEntry is one entry of the catalogue.
type hostileEntry struct {
	name string
	// craft returns the image's bytes, made from p (a fresh decoded copy of the good image; the
	// entry may change it) and good (the good image's bytes).
	craft func(t *testing.T, p *imgfmt.Process, good []byte) []byte
	// want is the errno name the thaw must fail with, or "thawed": the thaw succeeds.
	want string
	// stream thaws the image through a pipe instead of from the file.
	stream bool
	// fd9, for a thawed entry, is what fd 9 of the thawed program must be (readlink), "" for
	// anything.
	fd9 string
}

const (
	unprivUID = 65534
	// sentryGrowthBound bounds how much the sentry's peak RSS may exceed its RSS before the
	// thaws: generous for the legitimate work (every image is a few hundred KiB), far below the
	// allocation bombs' claims (256 MiB of notes, 65531 program headers, 65536 groups).
	sentryGrowthBound = 96 << 20
)

// encoded returns p encoded.
func encoded(t *testing.T, p *imgfmt.Process) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := imgfmt.Encode(&b, p); err != nil {
		t.Fatalf("encoding the crafted image: %v", err)
	}
	return b.Bytes()
}

// raw returns p encoded and indexed for byte patches.
func raw(t *testing.T, p *imgfmt.Process) *rawImage {
	t.Helper()
	r, err := encodeRaw(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// zeroMappingBelow inserts a MapZero mapping of one page into p in the free space at or below
// want and returns its index.
func zeroMappingBelow(t *testing.T, p *imgfmt.Process, want uint64) int {
	t.Helper()
	a := freePage(p, want)
	if a == 0 {
		t.Fatalf("no free page below %#x", want)
	}
	return insertMapping(p, imgfmt.Mapping{Start: a, End: a + imgfmt.PageSize, Prot: imgfmt.ProtRead, Kind: imgfmt.MapZero})
}

// withRegs returns an entry that changes thread 0's registers.
func withRegs(change func(r *imgfmt.Regs)) func(*testing.T, *imgfmt.Process, []byte) []byte {
	return func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
		change(&p.Threads[0].Regs)
		return encoded(t, p)
	}
}

// withXState returns an entry that changes thread 0's XSAVE area (skipped if it has none).
func withXState(change func(xs []byte)) func(*testing.T, *imgfmt.Process, []byte) []byte {
	return func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
		xs := p.Threads[0].XState
		if len(xs) < 576 {
			t.Skipf("thread 0 has no XSAVE header (%d bytes)", len(xs))
		}
		change(xs)
		return encoded(t, p)
	}
}

// statHandle returns a handle for path as a freeze would record it (so that only who may open it
// decides the thaw).
func statHandle(t *testing.T, path string) *imgfmt.FileHandle {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return &imgfmt.FileHandle{Path: path, DevMajor: uint32(st.Dev >> 8 & 0xfff), DevMinor: uint32(st.Dev&0xff | st.Dev>>12&^0xff),
		Ino: st.Ino, Mode: st.Mode, Size: st.Size, MtimeNano: st.Mtim.Nano(), CtimeNano: st.Ctim.Nano()}
}

// newRegularFD adds fd 9, a regular file, to p (hostile_thaw keeps none of its own: its stdio are
// the host's) and returns it for the entry to give it a handle.
func newRegularFD(t *testing.T, p *imgfmt.Process) *imgfmt.File {
	t.Helper()
	i := 0
	for i < len(p.Files) && p.Files[i].FD < 9 {
		i++
	}
	if i < len(p.Files) && p.Files[i].FD == 9 {
		t.Fatal("fd 9 is taken")
	}
	f := imgfmt.File{FD: 9, Kind: imgfmt.FileRegular, StatusFlags: syscall.O_RDONLY}
	p.Files = append(p.Files[:i], append([]imgfmt.File{f}, p.Files[i:]...)...)
	return &p.Files[i]
}

// hostileCatalogue returns the entries; secret is a root-only (0600) file.
func hostileCatalogue(secret string) []hostileEntry {
	fdOn := func(h func(t *testing.T) *imgfmt.FileHandle, kind imgfmt.FileKind) func(*testing.T, *imgfmt.Process, []byte) []byte {
		return func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			f := newRegularFD(t, p)
			f.Kind, f.Handle, f.Desc = kind, h(t), h(t).Path
			return encoded(t, p)
		}
	}
	named := func(path string, mode uint32) func(t *testing.T) *imgfmt.FileHandle {
		return func(t *testing.T) *imgfmt.FileHandle {
			return &imgfmt.FileHandle{Path: path, Mode: mode}
		}
	}
	secretHandle := func(t *testing.T) *imgfmt.FileHandle { return statHandle(t, secret) }
	return []hostileEntry{
		// Address space.
		{name: "overlapping_segments", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			i := zeroMappingBelow(t, p, p.Mappings[len(p.Mappings)-1].Start-imgfmt.PageSize)
			if i+1 >= len(p.Mappings) {
				t.Fatal("no mapping above the inserted one")
			}
			r := raw(t, p)
			r.setRange(i, p.Mappings[i].Start, p.Mappings[i+1].Start+imgfmt.PageSize)
			return r.b
		}},
		{name: "segment_over_vdso", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			i := zeroMappingBelow(t, p, p.VM.VDSOBase-2*imgfmt.PageSize)
			r := raw(t, p)
			r.setRange(i, p.Mappings[i].Start, p.VM.VDSOBase+imgfmt.PageSize)
			return r.b
		}},
		{name: "segment_over_vvar", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			insertMapping(p, imgfmt.Mapping{Start: p.VM.VDSOBase - imgfmt.PageSize, End: p.VM.VDSOBase, Prot: imgfmt.ProtRead | imgfmt.ProtWrite, Kind: imgfmt.MapZero})
			return encoded(t, p)
		}},
		{name: "segment_at_zero", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			insertMapping(p, imgfmt.Mapping{Start: 0, End: imgfmt.PageSize, Prot: imgfmt.ProtRead | imgfmt.ProtExec, Kind: imgfmt.MapZero})
			return encoded(t, p)
		}},
		{name: "segment_in_kernel_range", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			last := &p.Mappings[len(p.Mappings)-1]
			i := insertMapping(p, imgfmt.Mapping{Start: last.End, End: last.End + imgfmt.PageSize, Prot: imgfmt.ProtRead, Kind: imgfmt.MapZero})
			r := raw(t, p)
			r.setRange(i, 0xffffffff81000000, 0xffffffff81001000)
			return r.b
		}},
		{name: "segment_past_user_range", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			last := &p.Mappings[len(p.Mappings)-1]
			i := insertMapping(p, imgfmt.Mapping{Start: last.End, End: last.End + imgfmt.PageSize, Prot: imgfmt.ProtRead, Kind: imgfmt.MapZero})
			r := raw(t, p)
			r.setRange(i, imgfmt.MaxUserAddress-imgfmt.PageSize, imgfmt.MaxUserAddress+imgfmt.PageSize)
			return r.b
		}},
		{name: "load_offset_past_eof", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			r := raw(t, p)
			for i := range p.Mappings {
				if p.Mappings[i].Kind == imgfmt.MapContent {
					r.setLoadOffset(i, uint64(len(r.b))+1<<30)
					return r.b
				}
			}
			t.Fatal("no content mapping")
			return nil
		}},
		{name: "data_past_eof", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, good []byte) []byte {
			return good[:len(good)-imgfmt.PageSize]
		}},
		// Allocation bombs: counts and sizes the image claims but does not hold.
		{name: "bomb_phnum", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, good []byte) []byte {
			r := raw(t, p)
			r.setPhnum(imgfmt.MaxMappings + 1)
			return r.b
		}},
		{name: "bomb_note_size", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, good []byte) []byte {
			r := raw(t, p)
			r.setNoteSize(imgfmt.MaxNotesSize)
			return r.b
		}},
		{name: "bomb_note_size.stream", stream: true, want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, good []byte) []byte {
			r := raw(t, p)
			r.setNoteSize(imgfmt.MaxNotesSize)
			return r.b
		}},
		{name: "bomb_ngroups", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, good []byte) []byte {
			r := raw(t, p)
			r.setNgroups(imgfmt.MaxGroups)
			return r.b
		}},
		// Registers.
		{name: "rip_kernel", want: "EINVAL", craft: withRegs(func(r *imgfmt.Regs) { r.Rip = 0xffffffff81000000 })},
		{name: "rip_noncanonical", want: "EINVAL", craft: withRegs(func(r *imgfmt.Regs) { r.Rip = 0x0000800000000000 })},
		{name: "cs_32bit", want: "EINVAL", craft: withRegs(func(r *imgfmt.Regs) { r.Cs = 0x23 })},
		{name: "cs_kernel", want: "EINVAL", craft: withRegs(func(r *imgfmt.Regs) { r.Cs = 0x10 })},
		{name: "ss_bad", want: "EINVAL", craft: withRegs(func(r *imgfmt.Regs) { r.Ss = 0x18 })},
		{name: "eflags_iopl", want: "EINVAL", craft: withRegs(func(r *imgfmt.Regs) { r.Eflags |= 3 << 12 })},
		{name: "eflags_vm", want: "EINVAL", craft: withRegs(func(r *imgfmt.Regs) { r.Eflags |= 1 << 17 })},
		{name: "fs_base_kernel", want: "EINVAL", craft: withRegs(func(r *imgfmt.Regs) { r.FsBase = 0xffff888000000000 })},
		// XSAVE areas.
		{name: "xstate_bv_reserved", want: "EINVAL", craft: withXState(func(xs []byte) {
			binary.LittleEndian.PutUint64(xs[512:], binary.LittleEndian.Uint64(xs[512:])|1<<62)
		})},
		{name: "xcomp_bv_compacted", want: "EINVAL", craft: withXState(func(xs []byte) {
			binary.LittleEndian.PutUint64(xs[520:], 1<<63|3)
		})},
		{name: "xsave_header_reserved", want: "EINVAL", craft: withXState(func(xs []byte) {
			binary.LittleEndian.PutUint64(xs[528:], math.MaxUint64)
		})},
		{name: "mxcsr_reserved", want: "EINVAL", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			for _, a := range [][]byte{p.Threads[0].FPRegs, p.Threads[0].XState} {
				if len(a) >= 32 {
					binary.LittleEndian.PutUint32(a[24:], 0xffffffff)
				}
			}
			return encoded(t, p)
		}},
		// File handles: paths outside what the caller may open.
		{name: "fd_root_only_file", want: "EACCES", craft: fdOn(secretHandle, imgfmt.FileRegular)},
		{name: "mapping_root_only_file", want: "EACCES", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			i := zeroMappingBelow(t, p, p.VM.VDSOBase-4*imgfmt.PageSize)
			m := &p.Mappings[i]
			m.Kind, m.File, m.Name = imgfmt.MapReference, secretHandle(t), secret
			return encoded(t, p)
		}},
		// The executable is reopened only for /proc/self/exe; when the caller cannot open it
		// (or it changed) the image stands in for it (docs/notes-thaw.md), so the thaw goes on.
		{name: "exe_root_only_file", want: "thawed", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			p.VM.Exe = secretHandle(t)
			return encoded(t, p)
		}},
		{name: "fd_dotdot_root_only", want: "EACCES", craft: fdOn(func(t *testing.T) *imgfmt.FileHandle {
			h := statHandle(t, secret)
			h.Path = "/tmp/../../.." + secret
			return h
		}, imgfmt.FileRegular)},
		// A relative path (as a host fd's "host:[N]" name) is never reopened: a placeholder.
		{name: "fd_relative_path", want: "thawed", fd9: "pipe:", craft: fdOn(named("../../etc/shadow", syscall.S_IFREG|0o640), imgfmt.FileRegular)},
		{name: "fd_host_only_path", want: "ESTALE", craft: fdOn(named("/run/runsc-ckpt-no-such-host-file", syscall.S_IFREG|0o600), imgfmt.FileRegular)},
		{name: "fd_device_absent", want: "ESTALE", craft: fdOn(named("/dev/sda", syscall.S_IFBLK|0o660), imgfmt.FileBlockDev)},
		{name: "fd_device_spoofed", want: "thawed", fd9: "/dev/null", craft: fdOn(func(t *testing.T) *imgfmt.FileHandle {
			// /dev/null's path with /dev/mem's numbers: the thaw opens what the path is, or nothing.
			return &imgfmt.FileHandle{Path: "/dev/null", Mode: syscall.S_IFCHR | 0o640, DevMajor: 1, DevMinor: 1}
		}, imgfmt.FileCharDev)},
		// Credentials the image claims.
		{name: "claims_root", want: "thawed", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			p.Creds = imgfmt.Creds{Groups: []uint32{0, 1}} // uid, gid, euid, ... all 0
			return encoded(t, p)
		}},
		{name: "claims_setid", want: "thawed", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			p.Creds = imgfmt.Creds{UID: unprivUID, GID: unprivUID, FSUID: unprivUID, FSGID: unprivUID}
			return encoded(t, p)
		}},
		{name: "exe_claims_setuid_mode", want: "thawed", craft: func(t *testing.T, p *imgfmt.Process, _ []byte) []byte {
			exe := *p.VM.Exe
			exe.Mode |= syscall.S_ISUID
			p.VM.Exe = &exe
			return encoded(t, p)
		}},
	}
}

// sentryMem returns VmRSS and VmHWM (bytes) of process pid.
func sentryMem(t *testing.T, pid int) (rss, hwm int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("reading the sentry's status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			hwm = v << 10
		}
	}
	return rss, hwm
}

// TestHostileImages runs the catalogue on every platform (docs/security.md lists each entry).
func TestHostileImages(t *testing.T) {
	guest := h.BuildC(t, "hostile_thaw")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		secret := filepath.Join(dir, "secret")
		if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		good := filepath.Join(dir, "good.ckpt")
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, "freeze", good, secret)
		r.WantExit(t, 128+9)
		goodBytes, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		// The good image itself, thawed by the unprivileged user, is the reference.
		entries := append([]hostileEntry{{name: "good", want: "thawed", craft: func(t *testing.T, _ *imgfmt.Process, good []byte) []byte { return good }}},
			hostileCatalogue(secret)...)
		var images []string
		crafted := map[string]bool{}
		for _, e := range entries {
			t.Run("craft_"+e.name, func(t *testing.T) {
				b := e.craft(t, decodeImage(t, good), goodBytes)
				path := filepath.Join(dir, e.name+".ckpt")
				if e.stream {
					path = filepath.Join(dir, e.name) // the name ends in .stream
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				images = append(images, path)
				crafted[e.name] = true
			})
		}
		c := h.Bundle(t, harness.BundleOpts{
			Opts: harness.Opts{Platform: p, Persist: true, Timeout: 5 * time.Minute},
			Args: append([]string{guest, "thaw", "-sync"}, images...),
			Cwd:  dir,
			User: specs.User{UID: unprivUID, GID: unprivUID},
		})
		dropCapabilities(t, c)
		c.Create(t)
		c.Start(t)
		c.WaitForOutput(t, "ready\n")
		sentry := sandboxPid(t, c)
		rss0, hwm0 := sentryMem(t, sentry)
		// Made from inside the sandbox: its sentry caches the guest's failed lookups of a host file.
		c.Exec(t, "/bin/sh", "-c", "touch "+filepath.Join(dir, "go")).WantExit(t, 0)
		c.WaitForOutput(t, "done\n")
		rss1, hwm1 := sentryMem(t, sentry)
		c.Exec(t, "/bin/sh", "-c", "touch "+filepath.Join(dir, "end")).WantExit(t, 0)
		if code := c.Wait(t); code != 0 {
			t.Errorf("the thawing guest exited %d:\n%s\n%s", code, c.GuestStdout(), c.GuestStderr())
		}
		t.Logf("sentry memory: RSS %d KiB before the thaws, %d KiB after; peak %d KiB before, %d KiB after",
			rss0>>10, rss1>>10, hwm0>>10, hwm1>>10)
		if hwm1-rss0 > sentryGrowthBound {
			t.Errorf("the sentry's peak RSS grew from %d to %d KiB over the thaws (bound %d KiB)", rss0>>10, hwm1>>10, sentryGrowthBound>>10)
		}
		out := c.GuestStdout()
		for _, e := range entries {
			t.Run(e.name, func(t *testing.T) {
				if !crafted[e.name] {
					t.Skip("not crafted")
				}
				checkHostileOutput(t, out, e)
			})
		}
		c.Delete(t, true)
	})
}

// checkHostileOutput checks entry e's section of the thawing guest's output.
func checkHostileOutput(t *testing.T, out string, e hostileEntry) {
	t.Helper()
	name := e.name + ".ckpt"
	if e.stream {
		name = e.name
	}
	i := strings.Index(out, "begin "+name+"\n")
	j := strings.Index(out, "case "+name+" status=")
	if i < 0 || j < i {
		t.Fatalf("no complete section for %s:\n%s", name, out)
	}
	sec := out[i : j+len("case "+name+" status=0")]
	const me = " uid=65534/65534/65534 gid=65534/65534/65534"
	if !strings.HasSuffix(sec, "status=0") {
		t.Errorf("the thawing child did not exit 0:\n%s", sec)
	}
	if e.want == "thawed" {
		if want := "thawed r=7" + me + " groups=0 capeff=0000000000000000 secret=EACCES fd9="; !strings.Contains(sec, want) {
			t.Errorf("want %q:\n%s", want, sec)
		}
		if i := strings.Index(sec, " fd9="); i >= 0 && e.fd9 != "" {
			if fd9 := sec[i+len(" fd9="):]; !strings.HasPrefix(fd9, e.fd9) {
				t.Errorf("fd 9 of the thawed program is %q, want %q...", strings.SplitN(fd9, "\n", 2)[0], e.fd9)
			}
		}
		return
	}
	if want := "case " + name + " thaw=-1 errno=" + e.want + me + " alive\n"; !strings.Contains(sec, want) {
		t.Errorf("want %q:\n%s", want, sec)
	}
	if strings.Contains(sec, "thawed") {
		t.Errorf("the image thawed:\n%s", sec)
	}
}

// dropCapabilities rewrites c's config.json so that its process has no capabilities (the
// harness gives every user all of them): an unprivileged user as Linux knows one.
func dropCapabilities(t *testing.T, c *harness.Container) {
	t.Helper()
	c.Spec.Process.Capabilities = &specs.LinuxCapabilities{}
	b, err := json.MarshalIndent(c.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
