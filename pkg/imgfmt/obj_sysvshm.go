package imgfmt

import "fmt"

// SysVShmObject is a SysV shared memory segment the process has attached (ObjSysVShm): its key,
// id, mode, size and contents, and the MapObject mappings that attach it. It has no fds.
//
// Body layout (docs/image-format.md §4.3): 0 key i32, 4 id i32, 8 mode u32, 12 flags u32,
// 16 size u64, 24 nruns u32, 28 nmaps u32, 32 nruns × (offset u64, length u64), nmaps × start
// u64, the runs' bytes concatenated.
type SysVShmObject struct {
	// Key is the segment's key (0: IPC_PRIVATE).
	Key int32
	// ID is the segment's id (shmid) in its IPC namespace.
	ID int32
	// Mode holds the permission bits (shm_perm.mode & 0777).
	Mode uint32
	// Removed: IPC_RMID was called; the segment goes away when the last attachment does.
	Removed bool
	// Size is the segment's size (shm_segsz) in bytes.
	Size uint64
	// Runs hold the segment's data; every byte outside them is zero.
	Runs []DataRun
	// Maps are the start addresses of the MapObject mappings that attach the segment, ascending.
	Maps []uint64
}

const (
	sysVShmRemoved   = 1 << 0
	sysVShmFixedSize = 32
	// MaxSysVShmSize bounds a segment's size (gVisor's SHMMAX).
	MaxSysVShmSize = 1<<63 - 1
)

// Kind implements ObjectBody.
func (*SysVShmObject) Kind() ObjectKind { return ObjSysVShm }

func (s *SysVShmObject) objectMaps() []uint64 { return s.Maps }

func (s *SysVShmObject) encode(w *wbuf) {
	w.i32(s.Key)
	w.i32(s.ID)
	w.u32(s.Mode)
	var flags uint32
	if s.Removed {
		flags |= sysVShmRemoved
	}
	w.u32(flags)
	w.u64(s.Size)
	w.u32(uint32(len(s.Runs)))
	w.u32(uint32(len(s.Maps)))
	encodeRunsAndMaps(w, s.Runs, s.Maps)
}

func decodeSysVShm(r *rbuf) ObjectBody {
	s := &SysVShmObject{Key: r.i32(), ID: r.i32(), Mode: r.u32()}
	flags := r.u32()
	if r.err == nil && flags&^sysVShmRemoved != 0 {
		r.off -= 4
		r.fail("sysv-shm: unknown flags %#x", flags)
	}
	s.Removed = flags&sysVShmRemoved != 0
	s.Size = r.u64()
	nruns, nmaps := r.u32(), r.u32()
	s.Runs, s.Maps = decodeRunsAndMaps(r, "sysv-shm", nruns, nmaps)
	return s
}

func (s *SysVShmObject) describe() string {
	var data uint64
	for _, r := range s.Runs {
		data += uint64(len(r.Data))
	}
	removed := ""
	if s.Removed {
		removed = ", removed"
	}
	return fmt.Sprintf("key %#x, id %d, mode %#o, size %d%s, %d bytes in %d runs, %d attachments", uint32(s.Key), s.ID, s.Mode, s.Size, removed, data, len(s.Runs), len(s.Maps))
}

func (s *SysVShmObject) check(p *Process, o *Object) string {
	switch {
	case len(o.FDs) > 0:
		return "a SysV shared memory segment has no fds"
	case s.ID < 0:
		return fmt.Sprintf("negative id %d", s.ID)
	case s.Mode&^0o777 != 0:
		return fmt.Sprintf("mode %#o has bits outside 0777", s.Mode)
	case s.Size == 0 || s.Size > MaxSysVShmSize:
		return fmt.Sprintf("size %d out of range", s.Size)
	case len(s.Maps) == 0:
		return "a segment the process does not attach"
	}
	if msg := checkRuns(s.Runs, s.Size); msg != "" {
		return msg
	}
	return checkMaps(p, s.Maps, false)
}
