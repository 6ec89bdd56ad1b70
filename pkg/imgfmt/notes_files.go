package imgfmt

import "fmt"

// runsc-ckpt's notes about files, each encoder beside its decoder: a file handle (in fd, mapping and
// cwd notes), the fd notes and the cwd note (docs/image-format.md §4.2).

// encodeHandle writes the 48-byte fixed part of a file handle (all zero for nil).
func encodeHandle(d *wbuf, h *FileHandle) {
	if h == nil {
		d.zeros(handleSize)
		return
	}
	d.u32(h.Mode)
	d.u32(h.DevMajor)
	d.u32(h.DevMinor)
	d.u32(0)
	d.u64(h.Ino)
	d.i64(h.Size)
	d.i64(h.MtimeNano)
	d.i64(h.CtimeNano)
}

// decodeHandle reads a handle's fixed 48 bytes; they must be zero when the handle is absent.
func decodeHandle(r *rbuf, present bool) *FileHandle {
	if !present {
		r.zero(handleSize, "absent file handle")
		return nil
	}
	h := &FileHandle{}
	h.Mode, h.DevMajor, h.DevMinor = r.u32(), r.u32(), r.u32()
	r.zero(4, "handle reserved")
	h.Ino = r.u64()
	h.Size, h.MtimeNano, h.CtimeNano = r.i64(), r.i64(), r.i64()
	return h
}

func handlePath(h *FileHandle) string {
	if h == nil {
		return ""
	}
	return h.Path
}

// decodeHandlePath reads the handle path string: non-empty for a present handle, empty otherwise.
func decodeHandlePath(r *rbuf, h *FileHandle) {
	path := r.str("file handle path", MaxPathLen)
	if r.err != nil {
		return
	}
	if h == nil {
		if path != "" {
			r.fail("path %q without a file handle", path)
		}
		return
	}
	if path == "" {
		r.fail("file handle with an empty path")
	}
	h.Path = path
}

func encodeFD(d *wbuf, f *File) {
	var flags uint32
	if f.IsImage {
		flags |= fdFlagIsImage
	}
	if f.Handle != nil {
		flags |= fdFlagHasHandle
	}
	d.u32(noteLayoutVersion)
	d.i32(f.FD)
	d.u32(f.FDFlags)
	d.u32(f.StatusFlags)
	d.i64(f.Offset)
	d.u32(uint32(f.Kind))
	d.u32(flags)
	encodeHandle(d, f.Handle)
	d.str(f.Desc)
	d.str(handlePath(f.Handle))
}

// decodeFDNote decodes fd note i (encodeFD).
func decodeFDNote(d *noteDecoder, n *rawNote, i int) error {
	d.loc.files = append(d.loc.files, n.off)
	r := n.reader(fmt.Sprintf("fd note %d", i))
	ownVersion(r)
	var f File
	f.FD = r.i32()
	f.FDFlags, f.StatusFlags = r.u32(), r.u32()
	f.Offset = r.i64()
	f.Kind = FileKind(r.u32())
	flags := r.u32()
	if r.err == nil && flags&^(fdFlagIsImage|fdFlagHasHandle) != 0 {
		r.off -= 4
		r.fail("unknown flags %#x", flags)
	}
	f.IsImage = flags&fdFlagIsImage != 0
	f.Handle = decodeHandle(r, flags&fdFlagHasHandle != 0)
	f.Desc = r.str("description", MaxPathLen)
	decodeHandlePath(r, f.Handle)
	if err := r.end(); err != nil {
		return err
	}
	d.p.Files = append(d.p.Files, f)
	return nil
}

// encodeCwd writes the cwd note: layout, reserved, the directory's handle and its path.
func encodeCwd(d *wbuf, h *FileHandle) {
	d.u32(noteLayoutVersion)
	d.u32(0) // reserved
	encodeHandle(d, h)
	d.str(h.Path)
}

// decodeCwdNote decodes the working directory note (encodeCwd; format 1.1).
func decodeCwdNote(d *noteDecoder, n *rawNote, _ int) error {
	d.loc.cwd = n.off
	r := n.reader("cwd note")
	ownVersion(r)
	r.zero(4, "reserved")
	h := decodeHandle(r, true)
	decodeHandlePath(r, h)
	if err := r.end(); err != nil {
		return err
	}
	d.p.Cwd = h
	return nil
}
