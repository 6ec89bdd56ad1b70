package ckpt

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh/sentryfh"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// vma is one line of /proc/pid/maps, as mm.ReadMapsDataInto reports it.
type vma struct {
	start, end         hostarch.Addr
	perms              hostarch.AccessType
	private            bool
	offset             uint64
	devMajor, devMinor uint32
	ino                uint64
	path               string
}

// ar returns the VMA's address range.
func (v *vma) ar() hostarch.AddrRange { return hostarch.AddrRange{Start: v.start, End: v.end} }

// fileBacked reports whether the VMA maps a file (or shared memory object) rather than private
// anonymous memory.
func (v *vma) fileBacked() bool { return v.ino != 0 || v.devMajor != 0 || v.devMinor != 0 }

// residency is what /proc/pid/smaps says about one VMA.
type residency struct {
	rss  uint64 // Bytes with pmas (touched pages).
	anon uint64 // Bytes with private pmas (anonymous, or copied on write from a file).
}

// Special VMA names.
const (
	nameVsyscall = "[vsyscall]"
	nameVvar     = "[vvar]"
	nameUsertrap = "[usertrap]" // systrap's syscall-patching table; its state lives in the sentry.
	nameStack    = "[stack]"
)

// vsyscallStart is the address of the [vsyscall] page, above every user address.
const vsyscallStart = 0xffffffffff600000

// listVMAs returns t's VMAs as /proc/pid/maps lists them, without the [vsyscall] entry that
// gVisor emulates (it is no VMA: nothing can be mapped, unmapped or captured there). It is the one
// walk of the VMAs, for the freeze and the thaw.
func listVMAs(t *kernel.Task) []vma {
	var vmas []vma
	// The callback runs under mm.mappingMu: only collect here.
	t.MemoryManager().ReadMapsDataInto(t, func(start, end hostarch.Addr, perms hostarch.AccessType, private string, offset uint64, devMajor, devMinor uint32, ino uint64, path string) {
		if path == nameVsyscall || start >= vsyscallStart {
			return
		}
		vmas = append(vmas, vma{start, end, perms, private == "p", offset, devMajor, devMinor, ino, path})
	})
	return vmas
}

// captureVMAs returns the task's VMAs (listVMAs) and their residency.
//
// Preconditions: the process's other threads are stopped, so the VMAs do not change between the
// two passes.
func captureVMAs(t *kernel.Task) ([]vma, map[hostarch.Addr]residency, error) {
	m := t.MemoryManager()
	vmas := listVMAs(t)
	var buf bytes.Buffer
	m.ReadSmapsDataInto(t, &buf)
	res, err := parseSmaps(buf.Bytes())
	if err != nil {
		return nil, nil, err
	}
	for i := range vmas {
		if _, ok := res[vmas[i].start]; !ok {
			return nil, nil, fmt.Errorf("VMA [%#x, %#x) missing from smaps (address space changed during freeze)", vmas[i].start, vmas[i].end)
		}
	}
	return vmas, res, nil
}

// parseSmaps reads the Rss and Anonymous fields of each VMA of an smaps text, by VMA start.
func parseSmaps(b []byte) (map[hostarch.Addr]residency, error) {
	res := make(map[hostarch.Addr]residency)
	var cur hostarch.Addr
	have := false
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		field, rest, _ := strings.Cut(line, " ")
		if strings.HasSuffix(field, ":") {
			if !have {
				return nil, fmt.Errorf("smaps: field %q before any VMA", field)
			}
			var kb uint64
			switch field {
			case "Rss:", "Anonymous:":
				if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
					return nil, fmt.Errorf("smaps: %q: %w", line, err)
				}
			default:
				continue
			}
			r := res[cur]
			if field == "Rss:" {
				r.rss = kb * 1024
			} else {
				r.anon = kb * 1024
			}
			res[cur] = r
			continue
		}
		var start, end uint64
		if _, err := fmt.Sscanf(field, "%x-%x", &start, &end); err != nil {
			return nil, fmt.Errorf("smaps: bad VMA line %q: %w", line, err)
		}
		cur, have = hostarch.Addr(start), true
		res[cur] = residency{}
	}
	return res, nil
}

// captureMappings turns the VMAs into the image's mappings (vvar, vDSO and [vsyscall] excluded;
// they are recorded in vm). Anonymous memory is stored by content, or as MapZero when it was never
// touched; a private file mapping that is unmodified and not writable is stored by reference; every
// other mapping by content.
//
// Errors: a [usertrap] VMA (systrap syscall patching is on, and the image's code would jump into a
// table that a thaw cannot recreate) fails the freeze with EINVAL.
//
// Preconditions: the process's other threads are stopped; running on t's task goroutine.
func captureMappings(t *kernel.Task, vm *imgfmt.VMInfo) ([]imgfmt.Mapping, error) {
	vmas, res, err := captureVMAs(t)
	if err != nil {
		return nil, err
	}
	m := t.MemoryManager()
	if base, ok := vdsoBase(m); ok {
		vm.VDSOBase, vm.VDSOSize = base, vdsoSize()
	}
	vm.VDSOHash = vdsoHash()
	var out []imgfmt.Mapping
	for i := range vmas {
		v := &vmas[i]
		switch {
		case v.path == nameUsertrap:
			return nil, fmt.Errorf("found a %s VMA at %#x: systrap syscall patching is enabled (run with --systrap-disable-syscall-patching=true): %w", nameUsertrap, v.start, linuxerr.EINVAL)
		case v.path == nameVvar:
			continue
		case vm.VDSOBase != 0 && uint64(v.start) >= vm.VDSOBase && uint64(v.end) <= vm.VDSOBase+vm.VDSOSize:
			continue
		}
		r := res[v.start]
		mp := imgfmt.Mapping{
			Start:     uint64(v.start),
			End:       uint64(v.end),
			Prot:      protOf(v.perms),
			Shared:    !v.private,
			GrowsDown: v.path == nameStack,
			Name:      v.path,
		}
		if v.fileBacked() {
			// The offset only means something with a handle: a file that cannot be named again
			// (memfd, deleted, a thawed segment of an old image) is stored by content.
			if mp.File = mappedFileHandle(t, v); mp.File != nil {
				mp.FileOffset = v.offset
				if !v.private && v.perms.Write {
					flushSharedFileMapping(t, m, v.start, v.end, v.path) // thaw_mm_shared.go
				}
			}
		}
		content := &memReader{ctx: t, mm: m, start: v.start, size: int64(v.end - v.start)}
		switch {
		case !v.fileBacked():
			if r.rss == 0 {
				mp.Kind = imgfmt.MapZero
				break
			}
			mp.Kind = imgfmt.MapContent
			content.skipUncommitted = true
			mp.Contents = content
		case v.private && !v.perms.Write && r.anon == 0 && mp.File != nil:
			mp.Kind = imgfmt.MapReference
			if page := elfHeaderPage(content, mp.FileOffset); page != nil {
				mp.HeaderPage = true
				mp.Contents = bytes.NewReader(page)
			}
		default:
			// Writable or modified private file mappings, shared mappings, and files that cannot
			// be named again (deleted, memfd, SysV shm): by content.
			mp.Kind = imgfmt.MapContent
			mp.Contents = content
		}
		out = append(out, mp)
	}
	return out, nil
}

// mappedFileHandle returns a handle for the file a VMA maps, or nil if the file cannot be named
// again by path: deleted or anonymous files (memfd, shared anonymous memory, SysV segments), or a
// path that names another file by now.
func mappedFileHandle(t *kernel.Task, v *vma) *imgfmt.FileHandle {
	if !strings.HasPrefix(v.path, "/") || strings.HasSuffix(v.path, " (deleted)") || strings.HasPrefix(v.path, "/memfd:") {
		return nil
	}
	h, err := sentryfh.FromPath(t, v.path)
	if err != nil {
		t.Debugf("ckpt: mapping [%#x, %#x) of %q has no handle: %v", v.start, v.end, v.path, err)
		return nil
	}
	if h.DevMajor != v.devMajor || h.DevMinor != v.devMinor || h.Ino != v.ino {
		t.Debugf("ckpt: mapping [%#x, %#x): %q is now another file (%d:%d/%d, mapped %d:%d/%d)", v.start, v.end, v.path, h.DevMajor, h.DevMinor, h.Ino, v.devMajor, v.devMinor, v.ino)
		return nil
	}
	return h.ToImage()
}

// protOf converts a VMA's permissions to the image's protection bits.
func protOf(p hostarch.AccessType) imgfmt.Prot {
	var prot imgfmt.Prot
	if p.Read {
		prot |= imgfmt.ProtRead
	}
	if p.Write {
		prot |= imgfmt.ProtWrite
	}
	if p.Execute {
		prot |= imgfmt.ProtExec
	}
	return prot
}

// elfHeaderPage returns the first page of a reference mapping at file offset 0 if it starts with an
// ELF header, else nil. The image stores that page, as Linux's cores do, so that debuggers find the
// file's program headers and build-id note (imgfmt.Mapping.HeaderPage). It is copied now: the
// encoder may run after the siblings resumed.
func elfHeaderPage(r *memReader, fileOffset uint64) []byte {
	if fileOffset != 0 || r.size < imgfmt.PageSize {
		return nil
	}
	page := make([]byte, imgfmt.PageSize)
	if _, err := r.ReadAt(page, 0); err != nil || !bytes.HasPrefix(page, []byte("\x7fELF")) {
		return nil
	}
	return page
}
