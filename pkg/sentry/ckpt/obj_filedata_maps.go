package ckpt

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Shared mappings of file data (image format 1.2, MapObject): a MAP_SHARED mapping of a memfd, of
// an unlinked file or of shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS) is not stored by
// content: it names its file-data object, and a thaw maps it shared from the rebuilt file, so the
// mapping and the fds (and other such mappings) keep seeing each other's writes.
//
// gVisor does not expose the file behind a VMA, only its device, inode, offset and name
// (docs/upstream-gaps.md). A mapping is matched to an fd's object by device and inode. A file that
// only mappings refer to (its fds were closed; always so for shared anonymous memory) becomes an
// object of its own, built from the mapped memory: its size is the end of the furthest mapped
// range, its mode 0600 (0777 for a memfd: what memfd_create gives), a memfd's seals are unknown
// (none). Such an object that would carry more than imgfmt.MaxObjectData bytes stays stored by
// content and comes back as a private copy, as before format 1.2 (not refused: that would make
// large shared memory unfreezable). SysV shared memory is not a file-data object.

// fileKey identifies a file by device and inode as /proc/pid/maps shows them.
type fileKey struct {
	major, minor uint32
	ino          uint64
}

// fileDataKind classifies a shared mapping's name: which kind of file-data object it maps, or ok
// false if it is not one (a file reopenable by path, SysV shared memory, ...).
func fileDataKind(name string) (memfd, anon, ok bool) {
	switch {
	case strings.HasPrefix(name, "/memfd:"):
		return true, false, true
	case name == "/dev/zero (deleted)" || strings.HasPrefix(name, "[anon_shmem:"):
		return false, true, true
	case strings.HasPrefix(name, "/") && strings.HasSuffix(name, " (deleted)"):
		return false, false, true
	}
	return false, false, false
}

// captureObjectMappings turns p's shared mappings of file data into MapObject mappings of their
// objects, adding objects for files that only mappings refer to.
//
// Preconditions: the process's other threads are stopped; running on t's task goroutine;
// p.Mappings, p.Files and p.Objects are captured.
func captureObjectMappings(t *kernel.Task, p *imgfmt.Process) error {
	byKey := make(map[fileKey]int)
	for i := range p.Objects {
		o := &p.Objects[i]
		if _, ok := o.Body.(*imgfmt.FileDataObject); !ok || len(o.FDs) == 0 {
			continue
		}
		if j := fileIndexOf(p, o.FDs[0].FD); j >= 0 && p.Files[j].Handle != nil {
			h := p.Files[j].Handle
			k := fileKey{h.DevMajor, h.DevMinor, h.Ino}
			byKey[k] = i
			o.Key = fileDataKey(k)
		}
	}
	vmas, _, err := captureVMAs(t)
	if err != nil {
		return err
	}
	byStart := make(map[uint64]*vma, len(vmas))
	for i := range vmas {
		byStart[uint64(vmas[i].start)] = &vmas[i]
	}
	// Mappings of files that no fd refers to, grouped by file, in address order.
	orphans := make(map[fileKey][]int)
	var orphanOrder []fileKey
	for i := range p.Mappings {
		m := &p.Mappings[i]
		v := byStart[m.Start]
		if !m.Shared || m.File != nil || m.Kind != imgfmt.MapContent || v == nil || !v.fileBacked() {
			continue
		}
		if _, _, ok := fileDataKind(m.Name); !ok {
			continue
		}
		k := fileKey{v.devMajor, v.devMinor, v.ino}
		if oi, ok := byKey[k]; ok {
			setObjectMapping(m, v, p.Objects[oi].Body.(*imgfmt.FileDataObject))
			continue
		}
		if _, seen := orphans[k]; !seen {
			orphanOrder = append(orphanOrder, k)
		}
		orphans[k] = append(orphans[k], i)
	}
	if err := captureSysVShm(t, p, byStart); err != nil {
		return err
	}
	for _, k := range orphanOrder {
		b, err := mappedFileData(t, p, orphans[k], byStart)
		if err != nil {
			return err
		}
		if b == nil {
			continue // Too large: stays stored by content.
		}
		for _, i := range orphans[k] {
			setObjectMapping(&p.Mappings[i], byStart[p.Mappings[i].Start], b)
		}
		p.Objects = append(p.Objects, imgfmt.Object{ID: uint32(len(p.Objects) + 1), Key: fileDataKey(k), Body: b})
	}
	return nil
}

// fileDataKey is the object key (imgfmt.Object.Key) of a file-data object with fds or shared
// mappings: a keyed hash of its device and inode, so that the images of one freeze agree on it
// whether a process has the file through an fd, only through mappings (shared anonymous memory a
// parent and its children map), or both; a tree restore rebuilds it once for all of them.
func fileDataKey(k fileKey) uint64 {
	var b [32 + 8 + 16]byte
	copy(b[:], objectKeySecret[:])
	copy(b[32:], "filedata")
	binary.LittleEndian.PutUint32(b[40:], k.major)
	binary.LittleEndian.PutUint32(b[44:], k.minor)
	binary.LittleEndian.PutUint64(b[48:], k.ino)
	sum := sha256.Sum256(b[:])
	return binary.LittleEndian.Uint64(sum[:]) | 1
}

// setObjectMapping makes m a MapObject mapping of b at the VMA's file offset.
func setObjectMapping(m *imgfmt.Mapping, v *vma, b *imgfmt.FileDataObject) {
	m.Kind = imgfmt.MapObject
	m.Contents = nil
	m.FileOffset = v.offset
	b.Maps = append(b.Maps, m.Start)
}

// mappedFileData builds the object of a file that only the mappings idx (ascending) refer to from
// their memory, or returns nil if it would carry more than imgfmt.MaxObjectData bytes.
func mappedFileData(t *kernel.Task, p *imgfmt.Process, idx []int, byStart map[uint64]*vma) (*imgfmt.FileDataObject, error) {
	first := &p.Mappings[idx[0]]
	memfd, anon, _ := fileDataKind(first.Name)
	b := &imgfmt.FileDataObject{Memfd: memfd, SharedAnon: anon, Mode: 0o600}
	switch {
	case memfd:
		b.Mode = 0o777
		b.Name = strings.TrimSuffix(strings.TrimPrefix(first.Name, "/memfd:"), " (deleted)")
		if len(b.Name) > imgfmt.MaxMemfdName {
			b.Name = b.Name[:imgfmt.MaxMemfdName]
		}
	case !anon:
		b.Name = strings.TrimSuffix(first.Name, " (deleted)")
	}
	for _, i := range idx {
		m := &p.Mappings[i]
		b.Size = max(b.Size, byStart[m.Start].offset+(m.End-m.Start))
	}
	// A memfd's or shared anonymous memory's pages live in the sentry's memory file like
	// anonymous memory: a page the host never committed is zero and is skipped without
	// committing it. An unlinked file's pages may live on the host (gofer): read them all.
	pages, ok := mappedPages(t, p, idx, byStart, memfd || anon)
	if !ok {
		return nil, nil
	}
	b.Runs = pagesToRuns(pages, b.Size)
	if b.Size > imgfmt.MaxFileDataSize {
		return nil, fmt.Errorf("shared mapping %q: size %d too large", first.Name, b.Size)
	}
	return b, nil
}

// mapObject maps the MapObject mapping mp from the rebuilt object that lists it.
func (p *thawPlan) mapObject(t *kernel.Task, mp *imgfmt.Mapping, opts memmap.MMapOpts) error {
	if p.mapOwners == nil {
		p.mapOwners = p.proc.MapObjectOwners()
	}
	i, ok := p.mapOwners[mp.Start]
	if !ok || i >= len(p.objects) || p.objects[i] == nil || p.objects[i].mapInto == nil {
		return invalidf("object mapping at %#x has no rebuilt object", mp.Start)
	}
	opts.Private = false
	opts.Offset = mp.FileOffset
	return p.objects[i].mapInto(t, mp, opts)
}

// mapFileData maps file (the rebuilt file of b) shared for mp. A write-sealed memfd's mappings
// are never writable again (their mapping was read-only, and gVisor refuses writable mappings
// of it).
func mapFileData(t *kernel.Task, file *vfs.FileDescription, b *imgfmt.FileDataObject, mp *imgfmt.Mapping, opts memmap.MMapOpts) error {
	if b.Seals&(imgfmt.SealWrite|imgfmt.SealFutureWrite) != 0 {
		opts.MaxPerms.Write = false
	}
	if err := file.ConfigureMMap(t, &opts); err != nil {
		return fmt.Errorf("configuring the shared mapping: %w", err)
	}
	_, err := t.MemoryManager().MMap(t, opts)
	if opts.MappingIdentity != nil {
		opts.MappingIdentity.DecRef(t)
	}
	return err
}

// mappedPages reads the non-zero pages of the file that the mappings idx map, by file offset. It
// returns ok false if they hold more than imgfmt.MaxObjectData bytes. A page this address space
// never touched may still hold data (written through an fd, another mapping, or by a thaw), so
// every page is read; with skipUncommitted, pages the host never committed are zero without being
// read (memory-file-backed memory only).
func mappedPages(t *kernel.Task, p *imgfmt.Process, idx []int, byStart map[uint64]*vma, skipUncommitted bool) (map[uint64][]byte, bool) {
	pages := make(map[uint64][]byte)
	var total uint64
	for _, i := range idx {
		m := &p.Mappings[i]
		v := byStart[m.Start]
		r := &memReader{ctx: t, mm: t.MemoryManager(), start: v.start, size: int64(m.End - m.Start), skipUncommitted: skipUncommitted}
		runs, err := dataRuns(func(buf []byte, off int64) (int, error) { return r.ReadAt(buf, off) }, m.End-m.Start)
		if err != nil {
			t.Debugf("ckpt: shared mapping [%#x, %#x) %q stays stored by content: %v", m.Start, m.End, m.Name, err)
			return nil, false
		}
		for _, run := range runs {
			for o := 0; o < len(run.Data); o += imgfmt.PageSize {
				at := v.offset + run.Offset + uint64(o)
				if _, dup := pages[at]; !dup {
					if total += imgfmt.PageSize; total > imgfmt.MaxObjectData {
						t.Debugf("ckpt: shared mapping %q carries more than %d bytes: stored by content", m.Name, imgfmt.MaxObjectData)
						return nil, false
					}
				}
				pages[at] = run.Data[o : o+imgfmt.PageSize]
			}
		}
	}
	return pages, true
}

// pagesToRuns turns pages (by file offset) into ascending, coalesced runs, cut at size.
func pagesToRuns(pages map[uint64][]byte, size uint64) []imgfmt.DataRun {
	offs := make([]uint64, 0, len(pages))
	for o := range pages {
		if o < size {
			offs = append(offs, o)
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	var runs []imgfmt.DataRun
	for _, o := range offs {
		data := pages[o][:min(uint64(len(pages[o])), size-o)]
		if k := len(runs) - 1; k >= 0 && runs[k].Offset+uint64(len(runs[k].Data)) == o {
			runs[k].Data = append(runs[k].Data, data...)
			continue
		}
		runs = append(runs, imgfmt.DataRun{Offset: o, Data: append([]byte(nil), data...)})
	}
	return runs
}
