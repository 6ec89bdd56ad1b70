package ckpt

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
	"gvisor.dev/gvisor/pkg/waiter"
)

// treeWriter writes the tree stream into the caller's file. Unlike the single-process fileSink it
// waits for a full pipe or socket without being interrupted by signals (only a kill ends the wait):
// a whole-container checkpoint should not fail because the caller's runtime got a SIGURG or a
// SIGCHLD while its reader was slow. As for fileSink, a write into a pipe whose reader left fails
// with EPIPE and sends the caller no SIGPIPE, and every write error is one of docs/abi.md's
// (sinkError): the guest-side fuzzer found a tree freeze into an unconnected socket failing with
// EDESTADDRREQ. Writes into a datagram or seqpacket socket are split as the socket needs
// (messageLimit).
type treeWriter struct {
	t *kernel.Task
	f *vfs.FileDescription
	// written counts the bytes written.
	written int64
	// limit is the largest write the file takes at once.
	limit messageLimit
}

// treeWritePoll bounds one wait for the file to become writable.
const treeWritePoll = 50 * time.Millisecond

// Write implements io.Writer.
//
// After a write that would block it registers for writability and retries once (a reader that
// made room in between is not missed), then sleeps until the file says it became writable, or
// treeWritePoll has passed, before each further try. It never retries without such a sleep: a
// datagram or seqpacket socket that has room, but not for the whole message, reports itself
// writable while the write would block, and a retry on readiness alone spun on the CPU for ever
// (docs/fuzzing.md, finding 5). A kill ends the loop at the next try.
func (w *treeWriter) Write(b []byte) (int, error) {
	src := usermem.BytesIOSequence(b)
	total := 0
	ready := readyWaiter{f: w.f, mask: waiter.WritableEvents} // file_ready.go
	defer ready.release()
	for total < len(b) {
		if w.t.Killed() {
			return total, fmt.Errorf("killed while writing the tree stream: %w", linuxerr.EINTR)
		}
		piece := w.limit.clip(src.DropFirst(total))
		n, err := w.f.Write(noSIGPIPE{w.t}, piece, vfs.WriteOptions{})
		total += int(n)
		w.written += n
		if err == nil {
			if n == 0 {
				return total, fmt.Errorf("writing the tree stream: no progress: %w", linuxerr.EIO)
			}
			continue
		}
		if n == 0 && w.limit.shrink(err, piece.NumBytes()) {
			continue
		}
		if !linuxerr.Equals(linuxerr.ErrWouldBlock, err) {
			return total, fmt.Errorf("writing the tree stream: %w", sinkError(err))
		}
		if err := ready.wait(w.pollWritable); err != nil {
			return total, fmt.Errorf("writing the tree stream: %w", sinkError(err))
		}
	}
	return total, nil
}

// pollWritable waits, uninterruptibly, until ch fires or treeWritePoll has passed: the loop in
// Write checks for a kill before each try.
func (w *treeWriter) pollWritable(ch <-chan struct{}) error {
	w.t.UninterruptibleSleepStart()
	defer w.t.UninterruptibleSleepFinish()
	select {
	case <-ch:
	case <-time.After(treeWritePoll):
	}
	return nil
}

// treeDigest returns the digest algorithm CKPT_FREEZE_TREE's flags choose: SHA-256 with
// CKPT_TREE_SHA256, else CRC-32C (docs/tree-format.md, "Digests"). The tree stream announces it
// (treefmt.StreamWriter.SetDigest) and every file of the checkpoint is hashed with it.
func treeDigest(flags int32) treefmt.DigestAlg {
	if flags&CKPT_TREE_SHA256 != 0 {
		return treefmt.DigestSHA256
	}
	return treefmt.DigestCRC32C
}

// Image fds (CKPT_TREE_IMAGE_FDS_SHIFT): the host's `checkpoint --format=elf` passes the helper
// one empty host file per expected image besides the stream pipe, and the images of the first
// processes are written straight into them. Through the pipe every byte was copied into the pipe,
// out of it by the host, and into the image file, with the sentry and the host taking turns on a
// full pipe; into a host file the sentry writes at the host's page-cache speed, and the stream
// only says which file holds which image (a SLOT record).

// openTreeImageFiles returns the image fds that flags name (fds 3, 4, ...; none without a
// count), each referenced: the caller drops them (dropFiles). Each must be an empty regular file
// open for writing and appear once.
func openTreeImageFiles(t *kernel.Task, flags int32) ([]*vfs.FileDescription, error) {
	n := int(uint32(flags) >> CKPT_TREE_IMAGE_FDS_SHIFT)
	if n > CKPT_TREE_IMAGE_FDS_MAX {
		return nil, linuxerr.EINVAL
	}
	files := make([]*vfs.FileDescription, 0, n)
	ok := false
	defer func() {
		if !ok {
			dropFiles(t, files)
		}
	}()
	for i := 0; i < n; i++ {
		f, err := openFile(t, int32(3+i), true /* write */)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		st, err := f.Stat(t, vfs.StatOptions{Mask: linux.STATX_TYPE | linux.STATX_SIZE})
		if err != nil {
			return nil, err
		}
		if st.Mode&linux.S_IFMT != linux.S_IFREG || st.Size != 0 || f.StatusFlags()&linux.O_APPEND != 0 {
			t.Infof("ckpt: tree freeze: image fd %d is not an empty regular file open for writing without O_APPEND", 3+i)
			return nil, linuxerr.EINVAL
		}
		for _, g := range files[:i] {
			if g == f {
				t.Infof("ckpt: tree freeze: image fd %d is the same file as an earlier one", 3+i)
				return nil, linuxerr.EINVAL
			}
		}
	}
	ok = true
	return files, nil
}

// dropFiles drops the references on files.
func dropFiles(t *kernel.Task, files []*vfs.FileDescription) {
	for _, f := range files {
		f.DecRef(t)
	}
}

// treeImages writes the images of a tree freeze: each into the next image fd while there are
// any, the rest into the stream.
type treeImages struct {
	t     *kernel.Task
	sw    *treefmt.StreamWriter
	files []*vfs.FileDescription
	// next counts the images written into image fds.
	next int
}

// treeImageWriters bounds the images written into image fds at once. Each writer has its own
// hasher (treefmt.HashingSink); with SHA-256 (CKPT_TREE_SHA256) the hash is the largest CPU cost
// of an image (0.69 s per GiB against 0.13 s each for reading the memory file and writing the
// image file): one image at a time leaves the other cores idle while the parked processes wait
// (CKPT_TREE_KILL), or, with the processes released and running, gives the writer a smaller share
// of the CPU than they get. (CRC-32C, the default, costs 0.04 s per GiB.)
func treeImageWriters() int { return max(1, min(runtime.GOMAXPROCS(0), 4)) }

// treeImageJob is the image of one member and where it goes.
type treeImageJob struct {
	m *treeMember
	// file is the index of its image fd, or -1 for the stream.
	file int
	// The outcome.
	sum  treefmt.FileDigest
	size int64
	err  error
}

// writeAll writes the image of every live member, fills the manifest's image names, sizes and
// digests (raising its version to what the digests need: treefmt.Manifest.RaiseVersion), and
// returns the bytes written. Images into image fds are written first, up to
// treeImageWriters at a time on goroutines of their own (an image fd is a host file: a write
// never waits for a reader); then their SLOT records and the remaining images go into the stream
// in pid order, on the task goroutine. Each member is released (unless kill) and its snapshot
// dropped as soon as its image is written.
func (w *treeImages) writeAll(members []*treeMember, manifest *treefmt.Manifest, kill bool) (int64, error) {
	var jobs []*treeImageJob
	for _, m := range members {
		if m.work == nil {
			continue
		}
		j := &treeImageJob{m: m, file: -1}
		if len(jobs) < len(w.files) {
			j.file = len(jobs)
		}
		jobs = append(jobs, j)
	}
	w.runFileJobs(jobs, kill)
	var written int64
	for _, j := range jobs {
		if j.file < 0 {
			continue
		}
		if j.err != nil {
			return 0, fmt.Errorf("writing the image of pid %d: %w", j.m.pid, j.err)
		}
		if err := w.sw.Slot(treefmt.ImageName(j.m.pid), j.file); err != nil {
			return 0, err
		}
		w.next++
	}
	for _, j := range jobs {
		if j.file < 0 {
			j.sum, j.size, j.err = w.writeStream(j.m)
			if j.err != nil {
				return 0, fmt.Errorf("writing the image of pid %d: %w", j.m.pid, j.err)
			}
			imageWritten(w.t, j.m, kill)
		}
		mp := manifest.Process(j.m.pid)
		mp.SetDigest(j.sum)
		mp.ImageSize = j.size
		written += j.size
	}
	manifest.RaiseVersion()
	return written, nil
}

// runFileJobs writes the images of the jobs that have an image fd, treeImageWriters at a time,
// and waits for them. Once one failed, those not started yet are not (they fail with its error).
func (w *treeImages) runFileJobs(jobs []*treeImageJob, kill bool) {
	ctx := newBackgroundContext(w.t)
	sem := make(chan struct{}, treeImageWriters())
	var (
		wg     sync.WaitGroup
		failed atomic.Bool
	)
	w.t.UninterruptibleSleepStart()
	defer w.t.UninterruptibleSleepFinish()
	for _, j := range jobs {
		if j.file < 0 {
			continue
		}
		sem <- struct{}{}
		if failed.Load() {
			<-sem
			j.err = linuxerr.ECANCELED
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			j.sum, j.size, j.err = w.writeFile(ctx, j.m, j.file)
			if j.err != nil {
				failed.Store(true)
				return
			}
			imageWritten(ctx, j.m, kill)
		}()
	}
	wg.Wait()
}

// writeFile writes the image of m into image fd i from ctx (not the task: it runs on a goroutine
// of its own) and returns its sparse digest (the algorithm the stream announces) and size.
func (w *treeImages) writeFile(ctx context.Context, m *treeMember, i int) (treefmt.FileDigest, int64, error) {
	p := readFrom(ctx, m)
	hs := &treefmt.HashingSink{W: &imageFileSink{ctx: ctx, f: w.files[i]}, Alg: w.sw.Digest(), Parallel: true}
	if err := imgfmt.Encode(hs, p); err != nil {
		return treefmt.FileDigest{}, 0, err
	}
	sum, size := hs.Result()
	return sum, size, nil
}

// writeStream writes the image of m into the stream, on the task goroutine.
func (w *treeImages) writeStream(m *treeMember) (treefmt.FileDigest, int64, error) {
	p := readFrom(w.t, m)
	if err := w.sw.BeginFile(treefmt.ImageName(m.pid)); err != nil {
		return treefmt.FileDigest{}, 0, err
	}
	hs := &treefmt.HashingSink{W: w.sw, Alg: w.sw.Digest(), Parallel: true}
	if err := imgfmt.Encode(hs, p); err != nil {
		return treefmt.FileDigest{}, 0, err
	}
	sum, size := hs.Result()
	return sum, size, nil
}

// readFrom points the memory readers of m's captured process at ctx and returns the process.
func readFrom(ctx context.Context, m *treeMember) *imgfmt.Process {
	p := m.work.proc
	for j := range p.Mappings {
		if r, ok := p.Mappings[j].Contents.(*memReader); ok {
			r.ctx = ctx
		}
	}
	return p
}

// imageWritten releases m (unless the tree is to be killed) and drops its snapshot, once its
// image is written.
func imageWritten(ctx context.Context, m *treeMember, kill bool) {
	if !kill {
		closeRelease(m.work)
	}
	if m.work.snap != nil {
		m.work.snap.DecUsers(ctx)
		m.work.snap = nil
	}
}

// imageFileSink writes one image into an image fd from offset 0 with pwrite: a hole only moves
// the offset on (the encoder never ends an image with one, so the file's size comes out right).
type imageFileSink struct {
	ctx context.Context
	f   *vfs.FileDescription
	off int64
}

// Write implements io.Writer.
func (s *imageFileSink) Write(b []byte) (int, error) {
	src := usermem.BytesIOSequence(b)
	total := 0
	for total < len(b) {
		n, err := s.f.PWrite(noSIGPIPE{s.ctx}, src.DropFirst(total), s.off, vfs.WriteOptions{})
		total += int(n)
		s.off += n
		if err != nil {
			return total, sinkError(err)
		}
		if n == 0 {
			return total, fmt.Errorf("writing an image file: no progress: %w", linuxerr.EIO)
		}
	}
	return total, nil
}

// Hole implements imgfmt.Sink.
func (s *imageFileSink) Hole(n int64) error {
	s.off += n
	return nil
}
