package ckpt

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh/sentryfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/pipefs"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/pipe"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Pipes and FIFOs (ObjPipe). The object is the *pipe.Pipe, so the read and write ends of one pipe
// are one object with two descriptions, and dup'd ends share one. The buffered bytes are copied
// with pipe.Pipe.WriteTo(dup=true), which peeks without consuming; the capacity is F_GETPIPE_SZ
// (VFSPipeFD.PipeSize). Both are exported, so no stateify field is needed.
//
// Thaw of an anonymous pipe (or a FIFO already unlinked at the freeze): a new pipe with the image's
// capacity and bytes, and one new open file description per description of the image, opened
// through the new pipe's own dentry with the description's access mode and status flags. The
// ends the image does not have are closed, so a missing writer means the reader gets the bytes
// and then end-of-file, and a missing reader means a writer gets EPIPE (and SIGPIPE).
//
// Thaw of a named FIFO: the path of its first fd is reopened with the same checks as any file
// (still a FIFO, else ESTALE), O_RDWR|O_NONBLOCK (which never blocks), and every description is
// opened through the reopened dentry. If that FIFO is the very pipe of the freeze (the same
// sandbox, object key equal), it keeps its current contents and capacity, as a reopened regular
// file keeps its current contents; otherwise (a new sandbox, or the FIFO was recreated) the image's
// capacity is set and its bytes are appended, at commit, so that a thaw that fails leaves the
// FIFO untouched. A FIFO on the host file system (gofer special file, --host-fifo=open) is not a
// sentry pipe and keeps its placeholder.

// pipeSettableFlags are the status flags a thaw restores on a pipe end besides its access mode.
const pipeSettableFlags = linux.O_APPEND | linux.O_NONBLOCK | linux.O_NOATIME

// capturePipe records the pipe behind file: capacity, buffered bytes, and whether it is a named
// FIFO that a thaw can reopen by path.
func capturePipe(t *kernel.Task, file *vfs.FileDescription, fd *pipe.VFSPipeFD) (*pipe.Pipe, *imgfmt.PipeObject, error) {
	p := fd.Pipe()
	size := fd.PipeSize()
	if size <= 0 || size > imgfmt.MaxObjectData {
		return nil, nil, fmt.Errorf("pipe capacity %d: %w", size, errUnsupportedObject)
	}
	body := &imgfmt.PipeObject{Capacity: uint32(size)}
	var buf bytes.Buffer
	if _, err := p.WriteTo(t, &buf, size, true /* dup: peek, do not consume */); err != nil && !errors.Is(err, io.EOF) && !linuxerr.Equals(linuxerr.ErrWouldBlock, err) {
		return nil, nil, fmt.Errorf("copying the buffered bytes: %w", err)
	}
	if buf.Len() > 0 {
		body.Data = buf.Bytes()
	}
	if file.Mount() != t.Kernel().PipeMount() {
		h, err := sentryfh.FromFD(t, file)
		if err != nil {
			return nil, nil, err
		}
		body.Named = h.Reopenable()
	}
	return p, body, nil
}

// thawPipe rebuilds a pipe or reopens a FIFO and opens its descriptions. Descriptions that only
// fds 0-2 have are left nil (the caller keeps its own fds 0-2), and a pipe only those fds have is
// not rebuilt at all: a FIFO that was the frozen process's stdin is not reopened or refilled.
func thawPipe(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, body *imgfmt.PipeObject) (*thawedObject, error) {
	needed := make([]bool, o.Descs())
	anyNeeded := false
	for _, f := range o.FDs {
		if f.FD > 2 {
			needed[f.Desc] = true
			anyNeeded = true
		}
	}
	if !anyNeeded {
		return &thawedObject{files: make([]*vfs.FileDescription, o.Descs())}, nil
	}
	var (
		anchor *vfs.FileDescription
		commit func(*kernel.Task) error
		err    error
	)
	if body.Named {
		anchor, commit, err = reopenFIFO(t, p, o, body)
	} else {
		anchor, err = newPipeWithData(t, body)
	}
	if err != nil {
		return nil, err
	}
	defer anchor.DecRef(t)
	th := &thawedObject{files: make([]*vfs.FileDescription, o.Descs()), commit: commit}
	for d := range th.files {
		if !needed[d] {
			continue
		}
		f, err := openPipeEnd(t, anchor, descStatusFlags(p, o, uint32(d)))
		if err != nil {
			th.release(t)
			return nil, fmt.Errorf("description %d: %w", d, err)
		}
		th.files[d] = f
	}
	return th, nil
}

// newPipeWithData returns the read end of a new anonymous pipe with body's capacity and bytes (its
// write end is closed again; the caller opens the ends it needs through the returned one).
func newPipeWithData(t *kernel.Task, body *imgfmt.PipeObject) (*vfs.FileDescription, error) {
	r, w, err := pipefs.NewConnectedPipeFDs(t, t.Kernel().PipeMount(), 0)
	if err != nil {
		return nil, fmt.Errorf("new pipe: %w", err)
	}
	defer w.DecRef(t)
	if err := fillPipe(t, r.Impl().(*pipe.VFSPipeFD), body); err != nil {
		r.DecRef(t)
		return nil, err
	}
	return r, nil
}

// fillPipe sets fd's pipe's capacity to body's and appends body's bytes to it. The pipe must have a
// reader.
func fillPipe(t *kernel.Task, fd *pipe.VFSPipeFD, body *imgfmt.PipeObject) error {
	if int64(body.Capacity) != fd.PipeSize() {
		if _, err := fd.SetPipeSize(int64(body.Capacity)); err != nil {
			return fmt.Errorf("setting the capacity to %d: %w", body.Capacity, err)
		}
	}
	if len(body.Data) == 0 {
		return nil
	}
	n, err := fd.Pipe().ReadFrom(t, bytes.NewReader(body.Data), int64(len(body.Data)))
	if n != int64(len(body.Data)) {
		if err == nil || linuxerr.Equals(linuxerr.ErrWouldBlock, err) {
			err = linuxerr.EBUSY
		}
		return fmt.Errorf("refilling %d bytes (%d written; the pipe holds other bytes): %w", len(body.Data), n, err)
	}
	return nil
}

// reopenFIFO reopens the named FIFO of o by the path of its first fd, and returns an O_RDWR
// description of it and, unless it is the very FIFO of the freeze, the commit step that sets its
// capacity and appends the image's bytes.
func reopenFIFO(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, body *imgfmt.PipeObject) (*vfs.FileDescription, func(*kernel.Task) error, error) {
	i := fileIndexOf(p, o.FDs[0].FD)
	if i < 0 || p.Files[i].Handle == nil {
		return nil, nil, fmt.Errorf("named FIFO without a handle: %w", linuxerr.EINVAL)
	}
	f, err := reopenVerified(t, p.Files[i].Handle, linux.O_RDWR|linux.O_NONBLOCK, false /* content */)
	if err != nil {
		return nil, nil, err
	}
	fd, ok := f.Impl().(*pipe.VFSPipeFD)
	if !ok {
		f.DecRef(t)
		return nil, nil, fmt.Errorf("FIFO %q is not a sandbox pipe (a host FIFO?): %w", p.Files[i].Handle.Path, errUnsupportedObject)
	}
	if objectKey(fd.Pipe()) == o.Key {
		return f, nil, nil // The same FIFO: its contents are current.
	}
	if len(body.Data) > 0 && int64(len(body.Data))+pipeBuffered(t, fd.Pipe()) > max(int64(body.Capacity), fd.PipeSize()) {
		f.DecRef(t)
		return nil, nil, fmt.Errorf("FIFO %q holds other bytes, the image's %d do not fit: %w", p.Files[i].Handle.Path, len(body.Data), linuxerr.EBUSY)
	}
	commit := func(t *kernel.Task) error { return fillPipe(t, fd, body) }
	return f, commit, nil
}

// pipeBuffered returns how many bytes p holds.
func pipeBuffered(t *kernel.Task, p *pipe.Pipe) int64 {
	n, _ := p.WriteTo(t, io.Discard, pipe.MaximumPipeSize, true /* dup */)
	return n
}

// openPipeEnd opens a new description of the pipe or FIFO anchor is open on, through its dentry
// (as open("/proc/self/fd/N") does), with the access mode and status flags of status. It opens
// non-blocking, so that a FIFO end never waits for its peer, and then sets the recorded flags.
func openPipeEnd(t *kernel.Task, anchor *vfs.FileDescription, status uint32) (*vfs.FileDescription, error) {
	vd := anchor.VirtualDentry()
	pop := vfs.PathOperation{Root: vd, Start: vd}
	f, err := t.Kernel().VFS().OpenAt(t, t.Credentials(), &pop, &vfs.OpenOptions{Flags: status&linux.O_ACCMODE | linux.O_NONBLOCK})
	if err != nil {
		return nil, fmt.Errorf("opening a pipe end (flags %#x): %w", status, err)
	}
	if err := f.SetStatusFlags(t, t.Credentials(), status&pipeSettableFlags); err != nil {
		f.DecRef(t)
		return nil, fmt.Errorf("setting the status flags %#x: %w", status, err)
	}
	return f, nil
}
