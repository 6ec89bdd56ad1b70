package ckpt

import (
	"crypto/rand"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh/sentryfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/tmpfs"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
)

// File data (ObjFileData): regular files that cannot be reopened by path — unlinked files (also
// those of an unlinked directory, which must have been emptied first, and a hard-linked file
// whose name the fd was opened by is gone: the image keeps a copy, the remaining link is not
// searched for) and memfds. The image carries their contents (non-zero pages only), size, mode,
// memfd name and seals; every open file description keeps its offset and status flags (fd notes).
// Shared mappings of such files become MapObject mappings (obj_filedata_maps.go).
//
// Thaw: a memfd is made anew with memfd_create's constructor (same name, seals added after the
// contents are written). An unlinked file is created in its old directory under its old name
// (O_EXCL; under a random hidden name there if the old one is taken) and unlinked at once, so it
// lives on the same filesystem and /proc/self/fd shows "<old path> (deleted)" as before; if that
// directory is gone or not writable by the thawer (a new sandbox without it, an unlinked
// directory), it becomes an anonymous tmpfs file (fstat shows the shm filesystem; /proc/self/fd
// "/memfd:<old name> (deleted)"). Its owner is the thawer (identity is the thawer's).

// fileDataStatusFlags are the status flags a rebuilt description keeps.
const fileDataStatusFlags = linux.O_ACCMODE | linux.O_APPEND | linux.O_NONBLOCK | linux.O_DSYNC | linux.O_SYNC | linux.O_DIRECT

// isFileData reports whether file is a regular file whose contents the image must carry.
func isFileData(t *kernel.Task, file *vfs.FileDescription) bool {
	if tmpfs.IsMemfd(file) {
		return true
	}
	d := file.Dentry()
	if d == nil || !d.IsDead() {
		return false
	}
	st, err := file.Stat(t, vfs.StatOptions{Mask: linux.STATX_TYPE})
	return err == nil && st.Mode&linux.S_IFMT == linux.S_IFREG
}

// captureFileData returns the identity (the file's dentry) and state of a memfd or unlinked file,
// or ok false for any other file.
//
// Errors: more than imgfmt.MaxObjectData bytes of data → EFBIG.
func captureFileData(t *kernel.Task, file *vfs.FileDescription) (objectIdentity, imgfmt.ObjectBody, bool, error) {
	if !isFileData(t, file) {
		return nil, nil, false, nil
	}
	st, err := file.Stat(t, vfs.StatOptions{Mask: linux.STATX_MODE | linux.STATX_SIZE})
	if err != nil {
		return nil, nil, false, fmt.Errorf("stat: %w", err)
	}
	name, err := sentryfh.Pathname(t, file)
	if err != nil {
		return nil, nil, false, err
	}
	b := &imgfmt.FileDataObject{Mode: uint32(st.Mode) & 0o7777, Size: st.Size, Name: strings.TrimSuffix(name, " (deleted)")}
	if tmpfs.IsMemfd(file) {
		b.Memfd = true
		b.Name = strings.TrimPrefix(b.Name, "/memfd:")
		if b.Seals, err = tmpfs.GetSeals(file); err != nil {
			return nil, nil, false, fmt.Errorf("memfd seals: %w", err)
		}
	}
	if b.Size > imgfmt.MaxFileDataSize {
		return nil, nil, false, fmt.Errorf("size %d: %w", b.Size, linuxerr.EFBIG)
	}
	reader := file
	if !file.IsReadable() {
		// A write-only description: read through a new one (the checkpointer reads what the
		// process could read or write, like its memory, whatever the permissions).
		if reader, err = reopenForReading(t, file); err != nil {
			return nil, nil, false, fmt.Errorf("opening for reading: %w", err)
		}
		defer reader.DecRef(t)
	}
	read := func(p []byte, off int64) (int, error) {
		n, err := reader.PRead(t, usermem.BytesIOSequence(p), off, vfs.ReadOptions{})
		return int(n), err
	}
	if !b.Memfd && isCoreImage(read) {
		// A checkpoint image unlinked after its thaw (the thawed process keeps an fd on it, and
		// its unmodified memory may be mapped from it): never copied into the next image; it
		// gets a placeholder as before.
		return nil, nil, false, nil
	}
	if b.Runs, err = dataRuns(read, b.Size); err != nil {
		return nil, nil, false, err
	}
	return file.Dentry(), b, true, nil
}

// isCoreImage reports whether the file read reads starts like an ELF core file for x86-64 (a
// checkpoint image, docs/image-format.md §2).
func isCoreImage(read func([]byte, int64) (int, error)) bool {
	var h [20]byte
	n, _ := read(h[:], 0)
	return n == len(h) && string(h[:4]) == "\x7fELF" && h[4] == 2 && h[5] == 1 &&
		binary.LittleEndian.Uint16(h[16:]) == uint16(elf.ET_CORE) && binary.LittleEndian.Uint16(h[18:]) == uint16(elf.EM_X86_64)
}

// reopenForReading opens a readable description of the file behind the write-only file, with
// root's credentials (the checkpointer reads what the process could write, like its memory).
//
// Errors: gVisor's gofer opens a host file's read handle by name, which an unlinked file no longer
// has: unless the file was opened for reading before it was unlinked, its contents cannot be read
// back (EOPNOTSUPP; a file on tmpfs or on the sandbox's overlay is fine).
func reopenForReading(t *kernel.Task, file *vfs.FileDescription) (*vfs.FileDescription, error) {
	r, err := reopenDentry(t, file, linux.O_RDONLY, auth.NewRootCredentials(t.Credentials().UserNamespace))
	if err != nil {
		return nil, fmt.Errorf("a write-only unlinked file whose filesystem cannot reopen it for reading (%v): %w", err, errUnsupportedObject)
	}
	return r, nil
}

// reopenDentry opens a new description of the file behind f (which may be unlinked: it is not
// looked up by path) with the given flags and credentials.
func reopenDentry(t *kernel.Task, f *vfs.FileDescription, flags uint32, creds *auth.Credentials) (*vfs.FileDescription, error) {
	vd := f.VirtualDentry()
	pop := vfs.PathOperation{Root: vd, Start: vd}
	return t.Kernel().VFS().OpenAt(t, creds, &pop, &vfs.OpenOptions{Flags: flags | linux.O_LARGEFILE})
}

// thawFileData recreates a memfd or unlinked file with its contents and opens each of its
// descriptions with its status flags at its offset. The file itself (writable) is kept for the
// object's shared mappings.
func thawFileData(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.FileDataObject) (*thawedObject, error) {
	file, err := createFileData(t, b)
	if err != nil {
		return nil, err
	}
	th := &thawedObject{drop: func(t *kernel.Task) { file.DecRef(t) }, mapInto: func(t *kernel.Task, mp *imgfmt.Mapping, opts memmap.MMapOpts) error {
		return mapFileData(t, file, b, mp, opts)
	}}
	if err := fillFileData(t, file, b); err != nil {
		th.release(t)
		return nil, err
	}
	for desc := 0; desc < o.Descs(); desc++ {
		status := descStatusFlags(p, o, uint32(desc)) & fileDataStatusFlags
		f, err := reopenDentry(t, file, status, t.Credentials())
		if err != nil {
			th.release(t)
			return nil, fmt.Errorf("opening description %d: %w", desc, err)
		}
		th.files = append(th.files, f)
		if off := descOffset(p, o, uint32(desc)); off > 0 {
			if _, err := f.Seek(t, off, linux.SEEK_SET); err != nil {
				th.release(t)
				return nil, fmt.Errorf("description %d: seek to %d: %w", desc, off, err)
			}
		}
	}
	// The mode last: the descriptions were opened with the owner's rights the new file had.
	if !b.SharedAnon {
		if err := file.SetStat(t, vfs.SetStatOptions{Stat: linux.Statx{Mask: linux.STATX_MODE, Mode: uint16(b.Mode)}}); err != nil {
			th.release(t)
			return nil, fmt.Errorf("setting mode %#o: %w", b.Mode, err)
		}
	}
	if b.Seals != 0 && b.Seals != imgfmt.SealSeal {
		if err := tmpfs.AddSeals(file, b.Seals); err != nil {
			th.release(t)
			return nil, fmt.Errorf("adding seals %#x: %w", b.Seals, err)
		}
	}
	return th, nil
}

// descOffset returns the file offset of o's description desc: that of its first fd.
func descOffset(p *imgfmt.Process, o *imgfmt.Object, desc uint32) int64 {
	for _, f := range o.FDs {
		if f.Desc == desc {
			if i := fileIndexOf(p, f.FD); i >= 0 {
				return p.Files[i].Offset
			}
		}
	}
	return 0
}

// createFileData makes the empty file that will hold b's contents (see the comment at the top)
// and returns a writable description of it.
func createFileData(t *kernel.Task, b *imgfmt.FileDataObject) (*vfs.FileDescription, error) {
	creds := t.Credentials()
	shm := t.Kernel().ShmMount()
	switch {
	case b.SharedAnon:
		return tmpfs.NewZeroFile(t, creds, shm, b.Size)
	case b.Memfd:
		// A memfd made without MFD_ALLOW_SEALING has exactly F_SEAL_SEAL; one that allowed sealing
		// may have any seals (F_SEAL_SEAL among them), added once the contents are in.
		return tmpfs.NewMemfd(t, creds, shm, b.Seals != imgfmt.SealSeal, "memfd:"+b.Name)
	}
	if strings.HasPrefix(b.Name, "/") {
		f, err := createUnlinked(t, b.Name, b.Mode)
		if err == nil {
			return f, nil
		}
		if !linuxerr.Equals(linuxerr.EEXIST, err) {
			t.Debugf("ckpt: thaw: unlinked file %q not recreated in its directory, an anonymous file stands in: %v", b.Name, err)
			return tmpfs.NewMemfd(t, creds, shm, false, "memfd:"+path.Base(b.Name))
		}
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, err
		}
		if f, err = createUnlinked(t, path.Join(path.Dir(b.Name), ".runsc-ckpt-"+hex.EncodeToString(r[:])), b.Mode); err == nil {
			return f, nil
		}
		t.Debugf("ckpt: thaw: unlinked file %q not recreated in its directory, an anonymous file stands in: %v", b.Name, err)
	}
	return tmpfs.NewMemfd(t, creds, shm, false, "memfd:"+path.Base(b.Name))
}

// createUnlinked creates name (O_EXCL, readable and writable by its owner until thawFileData sets
// the recorded mode) with t's credentials and unlinks it at once.
func createUnlinked(t *kernel.Task, name string, mode uint32) (*vfs.FileDescription, error) {
	root := t.FSContext().RootDirectory()
	if !root.Ok() {
		return nil, linuxerr.ESRCH
	}
	defer root.DecRef(t)
	pop := vfs.PathOperation{Root: root, Start: root, Path: fspath.Parse(name)}
	vfsObj := t.Kernel().VFS()
	f, err := vfsObj.OpenAt(t, t.Credentials(), &pop, &vfs.OpenOptions{Flags: linux.O_RDWR | linux.O_CREAT | linux.O_EXCL | linux.O_LARGEFILE | linux.O_NOFOLLOW, Mode: linux.FileMode(mode&0o7777 | 0o600)})
	if err != nil {
		return nil, err
	}
	if err := vfsObj.UnlinkAt(t, t.Credentials(), &pop); err != nil {
		f.DecRef(t)
		return nil, fmt.Errorf("unlinking the new %q: %w", name, err)
	}
	return f, nil
}

// fillFileData writes b's runs into file and sets its size.
func fillFileData(t *kernel.Task, file *vfs.FileDescription, b *imgfmt.FileDataObject) error {
	for _, r := range b.Runs {
		if _, err := file.PWrite(t, usermem.BytesIOSequence(r.Data), int64(r.Offset), vfs.WriteOptions{}); err != nil {
			return fmt.Errorf("writing %d bytes at %d: %w", len(r.Data), r.Offset, err)
		}
	}
	if err := file.SetStat(t, vfs.SetStatOptions{Stat: linux.Statx{Mask: linux.STATX_SIZE, Size: b.Size}}); err != nil {
		return fmt.Errorf("setting size %d: %w", b.Size, err)
	}
	return nil
}
