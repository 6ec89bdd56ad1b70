package imgfmt

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// FileDataObject is a regular file that cannot be reopened by path and whose contents the image
// therefore carries (ObjFileData): an unlinked file, a memfd, or the shared anonymous memory behind
// MAP_SHARED|MAP_ANONYMOUS mappings. Its fds are its open file descriptions (offsets and status
// flags are in their fd notes); Maps names the MapObject mappings that map it, so a thaw maps them
// shared from the rebuilt file.
//
// Body layout (docs/image-format.md §4.3): 0 flags u32, 4 mode u32, 8 seals u32, 12 nruns u32,
// 16 nmaps u32, 20 reserved u32, 24 size u64, 32 nruns × (offset u64, length u64), nmaps × start
// u64, the runs' bytes concatenated, string name.
type FileDataObject struct {
	// Memfd: the file was made by memfd_create; Name is its name (without "memfd:").
	Memfd bool
	// SharedAnon: the file is the shared anonymous memory of MAP_SHARED|MAP_ANONYMOUS mappings (it
	// has no fds).
	SharedAnon bool
	// Mode holds the permission bits (st_mode & 07777).
	Mode uint32
	// Seals are the memfd's seals (F_GET_SEALS; F_SEAL_SEAL alone for a memfd made without
	// MFD_ALLOW_SEALING); 0 for other files.
	Seals uint32
	// Size is st_size.
	Size uint64
	// Runs hold the file's data: every byte outside them is zero (a hole, or zeros not stored).
	Runs []DataRun
	// Maps are the start addresses of the MapObject mappings of this file, ascending.
	Maps []uint64
	// Name is the memfd's name, or the unlinked file's path at freeze (without " (deleted)"); empty
	// for shared anonymous memory.
	Name string
}

// DataRun is a stretch of a file's data: Data at byte Offset.
type DataRun struct {
	Offset uint64
	Data   []byte
}

// MarshalJSON shows a run by its offset and length (`inspect --json`), never its bytes.
func (r DataRun) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Offset uint64 `json:"offset"`
		Length int    `json:"length"`
	}{r.Offset, len(r.Data)})
}

// Flags of a file-data body.
const (
	fileDataMemfd      = 1 << 0
	fileDataSharedAnon = 1 << 1
	fileDataFlags      = fileDataMemfd | fileDataSharedAnon
)

// Seal bits a memfd may carry (F_SEAL_SEAL, _SHRINK, _GROW, _WRITE, _FUTURE_WRITE).
const (
	SealSeal        = 0x1
	SealShrink      = 0x2
	SealGrow        = 0x4
	SealWrite       = 0x8
	SealFutureWrite = 0x10
	sealsKnown      = SealSeal | SealShrink | SealGrow | SealWrite | SealFutureWrite
)

// MaxFileDataSize bounds a file-data object's size (st_size fits in an off_t).
const MaxFileDataSize = 1<<63 - 1

// MaxMemfdName bounds a memfd's name (Linux: 249 bytes after "memfd:").
const MaxMemfdName = 249

const (
	fileDataFixedSize = 32
	dataRunSize       = 16
)

// Kind implements ObjectBody.
func (*FileDataObject) Kind() ObjectKind { return ObjFileData }

// DataBytes returns how many bytes of data the runs carry.
func (f *FileDataObject) DataBytes() uint64 {
	var n uint64
	for _, r := range f.Runs {
		n += uint64(len(r.Data))
	}
	return n
}

func (f *FileDataObject) encode(w *wbuf) {
	var flags uint32
	if f.Memfd {
		flags |= fileDataMemfd
	}
	if f.SharedAnon {
		flags |= fileDataSharedAnon
	}
	w.u32(flags)
	w.u32(f.Mode)
	w.u32(f.Seals)
	w.u32(uint32(len(f.Runs)))
	w.u32(uint32(len(f.Maps)))
	w.u32(0)
	w.u64(f.Size)
	encodeRunsAndMaps(w, f.Runs, f.Maps)
	w.str(f.Name)
}

func decodeFileData(r *rbuf) ObjectBody {
	f := &FileDataObject{}
	flags := r.u32()
	if r.err == nil && flags&^fileDataFlags != 0 {
		r.off -= 4
		r.fail("file-data: unknown flags %#x", flags)
	}
	f.Memfd = flags&fileDataMemfd != 0
	f.SharedAnon = flags&fileDataSharedAnon != 0
	f.Mode = r.u32()
	f.Seals = r.u32()
	nruns := r.u32()
	nmaps := r.u32()
	r.zero(4, "reserved")
	f.Size = r.u64()
	f.Runs, f.Maps = decodeRunsAndMaps(r, "file-data", nruns, nmaps)
	f.Name = r.str("file-data name", MaxPathLen)
	return f
}

// decodeRunsAndMaps reads nruns (offset, length) pairs, nmaps mapping starts and the runs' bytes,
// bounding every count and length by the bytes left in the note and by MaxObjectData before
// allocating.
func decodeRunsAndMaps(r *rbuf, kind string, nruns, nmaps uint32) ([]DataRun, []uint64) {
	if r.err != nil {
		return nil, nil
	}
	left := int64(len(r.b) - r.off)
	if int64(nruns)*dataRunSize+int64(nmaps)*8 > left {
		r.fail("%s: %d runs and %d mappings do not fit in the note", kind, nruns, nmaps)
		return nil, nil
	}
	var (
		runs  []DataRun
		maps  []uint64
		total uint64
	)
	lens := make([]uint64, nruns)
	for i := range lens {
		off, n := r.u64(), r.u64()
		if n > MaxObjectData || total+n > MaxObjectData {
			r.fail("%s: runs carry more than %d bytes", kind, MaxObjectData)
			return nil, nil
		}
		total += n
		runs = append(runs, DataRun{Offset: off})
		lens[i] = n
	}
	for i := 0; i < int(nmaps); i++ {
		maps = append(maps, r.u64())
	}
	if r.err == nil && total > uint64(len(r.b)-r.off) {
		r.fail("%s: %d bytes of data do not fit in the note", kind, total)
		return nil, nil
	}
	for i := range runs {
		runs[i].Data = r.take(int(lens[i]))
	}
	return runs, maps
}

// encodeRunsAndMaps writes what decodeRunsAndMaps reads (the counts are written by the caller).
func encodeRunsAndMaps(w *wbuf, runs []DataRun, maps []uint64) {
	for _, r := range runs {
		w.u64(r.Offset)
		w.u64(uint64(len(r.Data)))
	}
	for _, m := range maps {
		w.u64(m)
	}
	for _, r := range runs {
		w.bytes(r.Data)
	}
}

func (f *FileDataObject) describe() string {
	var b strings.Builder
	switch {
	case f.Memfd:
		fmt.Fprintf(&b, "memfd %q, seals %#x", f.Name, f.Seals)
	case f.SharedAnon:
		b.WriteString("shared anonymous memory")
	default:
		fmt.Fprintf(&b, "unlinked file %q", f.Name)
	}
	fmt.Fprintf(&b, ", mode %#o, size %d, %d bytes in %d runs", f.Mode, f.Size, f.DataBytes(), len(f.Runs))
	if len(f.Maps) > 0 {
		fmt.Fprintf(&b, ", %d shared mappings", len(f.Maps))
	}
	return b.String()
}

func (f *FileDataObject) check(p *Process, o *Object) string {
	switch {
	case f.Mode&^0o7777 != 0:
		return fmt.Sprintf("mode %#o has bits outside 07777", f.Mode)
	case f.Memfd && f.SharedAnon:
		return "both a memfd and shared anonymous memory"
	case f.Seals&^sealsKnown != 0:
		return fmt.Sprintf("unknown seals %#x", f.Seals)
	case !f.Memfd && f.Seals != 0:
		return "seals on a file that is not a memfd"
	case f.Memfd && len(f.Name) > MaxMemfdName:
		return fmt.Sprintf("memfd name longer than %d bytes", MaxMemfdName)
	case f.SharedAnon && (len(o.FDs) > 0 || f.Name != ""):
		return "shared anonymous memory has neither fds nor a name"
	case f.Size > MaxFileDataSize:
		return fmt.Sprintf("size %d exceeds %d", f.Size, uint64(MaxFileDataSize))
	}
	if err := checkString(f.Name, MaxPathLen); err != "" {
		return "name: " + err
	}
	if msg := checkRuns(f.Runs, f.Size); msg != "" {
		return msg
	}
	if msg := checkMaps(p, f.Maps, f.Seals&(SealWrite|SealFutureWrite) != 0); msg != "" {
		return msg
	}
	for _, fd := range o.FDs {
		if i := p.fileIndex(fd.FD); i >= 0 && p.Files[i].Kind != FileRegular {
			return fmt.Sprintf("fd %d is not a regular file", fd.FD)
		}
	}
	return ""
}

// checkRuns returns why runs are not valid data runs of a file of the given size, or "".
func checkRuns(runs []DataRun, size uint64) string {
	var total, end uint64
	for _, r := range runs {
		total += uint64(len(r.Data))
	}
	if total > MaxObjectData {
		return fmt.Sprintf("data exceeds %d bytes", MaxObjectData)
	}
	for i, r := range runs {
		n := uint64(len(r.Data))
		switch {
		case r.Offset%PageSize != 0:
			return fmt.Sprintf("run %d at %#x is not page-aligned", i, r.Offset)
		case n == 0:
			return fmt.Sprintf("run %d is empty", i)
		case i > 0 && r.Offset < end:
			return fmt.Sprintf("run %d at %#x overlaps or precedes the previous run ending at %#x", i, r.Offset, end)
		case r.Offset > size || n > size-r.Offset:
			return fmt.Sprintf("run %d [%#x, +%#x) ends beyond the size %d", i, r.Offset, n, size)
		case n%PageSize != 0 && r.Offset+n != size:
			return fmt.Sprintf("run %d has a partial page and does not end at the size", i)
		}
		end = r.Offset + n
	}
	return ""
}

// checkMaps returns why maps are not the ascending starts of object mappings of p (none writable
// if readOnly), or "".
func checkMaps(p *Process, maps []uint64, readOnly bool) string {
	for i, start := range maps {
		if i > 0 && start <= maps[i-1] {
			return fmt.Sprintf("mapping start %#x is not above the previous one", start)
		}
		m := p.mappingAt(start)
		if m == nil || m.Kind != MapObject {
			return fmt.Sprintf("no object mapping starts at %#x", start)
		}
		if readOnly && m.Prot&ProtWrite != 0 {
			return fmt.Sprintf("writable shared mapping at %#x of a write-sealed memfd", start)
		}
	}
	return ""
}

// mappingAt returns the mapping that starts at start, or nil.
func (p *Process) mappingAt(start uint64) *Mapping {
	i := sort.Search(len(p.Mappings), func(i int) bool { return p.Mappings[i].Start >= start })
	if i < len(p.Mappings) && p.Mappings[i].Start == start {
		return &p.Mappings[i]
	}
	return nil
}

// objectMapper is an object body that MapObject mappings map (file data, SysV shared memory).
type objectMapper interface {
	objectMaps() []uint64
}

func (f *FileDataObject) objectMaps() []uint64 { return f.Maps }

// MapObjectOwners returns, for the start of every MapObject mapping, the index in p.Objects of
// the object that lists it.
func (p *Process) MapObjectOwners() map[uint64]int {
	owners := make(map[uint64]int)
	for i := range p.Objects {
		if m, ok := p.Objects[i].Body.(objectMapper); ok {
			for _, s := range m.objectMaps() {
				owners[s] = i
			}
		}
	}
	return owners
}

// checkObjectMappings checks that every MapObject mapping is named by exactly one object (the
// objects' own checks ensure each name points at a MapObject mapping).
func checkObjectMappings(p *Process, fail func(part string, idx int, format string, args ...any) error) error {
	owner := make(map[uint64]uint32)
	for i := range p.Objects {
		if f, ok := p.Objects[i].Body.(objectMapper); ok {
			for _, start := range f.objectMaps() {
				if prev, dup := owner[start]; dup {
					return fail(partObject, i, "mapping at %#x also belongs to object %d", start, prev)
				}
				owner[start] = p.Objects[i].ID
			}
		}
	}
	for i := range p.Mappings {
		if m := &p.Mappings[i]; m.Kind == MapObject {
			if _, ok := owner[m.Start]; !ok {
				return fail(partMapping, i, "object mapping [%#x, %#x) belongs to no object", m.Start, m.End)
			}
		}
	}
	return nil
}
