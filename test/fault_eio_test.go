package test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// eioFS is a FUSE loopback file system over a directory whose files fail every write that reaches
// past eioLimit bytes with EIO, synchronously (FUSE has no write-back cache here): a disk that
// fails mid-write, which a loop device or dm-error cannot give (their failures surface at
// write-back, after write(2) has succeeded). Everything else passes through.
const eioLimit = 64 << 10

// mountEIOFS mounts eioFS over a fresh backing directory at a fresh mount point and returns the
// mount point; it is unmounted when the test ends.
func mountEIOFS(t *testing.T) (mnt, backing string) {
	t.Helper()
	dir := h.NewDir(t)
	backing, mnt = filepath.Join(dir, "backing"), filepath.Join(dir, "eio")
	for _, d := range []string{backing, mnt} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	root := &fs.LoopbackRoot{Path: backing}
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &eioNode{fs.LoopbackNode{RootData: r}}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		t.Fatal(err)
	}
	root.Dev = uint64(st.Dev)
	server, err := fs.Mount(mnt, &eioNode{fs.LoopbackNode{RootData: root}}, &fs.Options{
		MountOptions: fuse.MountOptions{AllowOther: true, DirectMount: true, FsName: "eiofs", Name: "eiofs"},
	})
	if err != nil {
		t.Fatalf("mounting the EIO file system (FUSE) at %s: %v", mnt, err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			t.Logf("unmounting %s: %v", mnt, err)
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	return mnt, backing
}

// eioNode is a loopback node whose open files fail writes past eioLimit.
type eioNode struct {
	fs.LoopbackNode
}

var (
	_ fs.NodeOpener  = (*eioNode)(nil)
	_ fs.NodeCreater = (*eioNode)(nil)
)

// Open implements fs.NodeOpener.
func (n *eioNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &eioFile{fh}, fuseFlags, 0
}

// Create implements fs.NodeCreater.
func (n *eioNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	inode, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return inode, &eioFile{fh}, fuseFlags, 0
}

// eioFile forwards everything to the loopback file but writes past eioLimit.
type eioFile struct {
	fh fs.FileHandle
}

var (
	_ fs.FileReader    = (*eioFile)(nil)
	_ fs.FileWriter    = (*eioFile)(nil)
	_ fs.FileFlusher   = (*eioFile)(nil)
	_ fs.FileReleaser  = (*eioFile)(nil)
	_ fs.FileGetattrer = (*eioFile)(nil)
	_ fs.FileSetattrer = (*eioFile)(nil)
	_ fs.FileFsyncer   = (*eioFile)(nil)
	_ fs.FileLseeker   = (*eioFile)(nil)
)

func (f *eioFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if off+int64(len(data)) > eioLimit {
		return 0, syscall.EIO
	}
	return f.fh.(fs.FileWriter).Write(ctx, data, off)
}

func (f *eioFile) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return f.fh.(fs.FileReader).Read(ctx, dest, off)
}

func (f *eioFile) Flush(ctx context.Context) syscall.Errno { return f.fh.(fs.FileFlusher).Flush(ctx) }

func (f *eioFile) Release(ctx context.Context) syscall.Errno {
	return f.fh.(fs.FileReleaser).Release(ctx)
}

func (f *eioFile) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.fh.(fs.FileGetattrer).Getattr(ctx, out)
}

func (f *eioFile) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.fh.(fs.FileSetattrer).Setattr(ctx, in, out)
}

func (f *eioFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return f.fh.(fs.FileFsyncer).Fsync(ctx, flags)
}

func (f *eioFile) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.fh.(fs.FileLseeker).Lseek(ctx, off, whence)
}

// TestFreezeEIO (issue 13, faults): an image written to a file system that fails writes with
// EIO part-way (eioFS, FUSE): the freeze fails with EIO, for an fd (its file truncated back to
// where it was; in the background, CKPT_WAIT reports it) and for the ckpt-file (no file left, under the final name or a temporary one),
// and the process runs on and can freeze into a good file afterwards.
func TestFreezeEIO(t *testing.T) {
	guest := h.BuildC(t, "freeze_eio")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		mnt, backing := mountEIOFS(t)
		// The file system does fail: a host write past the limit is EIO.
		probe := filepath.Join(mnt, "probe")
		if err := os.WriteFile(probe, make([]byte, 2*eioLimit), 0o644); !errors.Is(err, syscall.EIO) {
			t.Fatalf("writing %d bytes on the EIO file system: %v, want EIO", 2*eioLimit, err)
		}
		if err := os.Remove(probe); err != nil {
			t.Fatal(err)
		}
		good := h.NewDir(t)
		c := h.Bundle(t, harness.BundleOpts{
			Opts:   harness.Opts{Platform: p, Persist: true},
			Args:   []string{guest, mnt, good},
			Mounts: []specs.Mount{{Destination: mnt, Type: "bind", Source: mnt, Options: []string{"rbind", "rw"}}},
		})
		c.RunDetached(t)
		if code := c.Wait(t); code != 0 {
			t.Fatalf("guest exited %d:\n%s\n%s", code, c.GuestStdout(), c.GuestStderr())
		}
		got := strings.TrimSpace(c.GuestStdout())
		want := strings.Join([]string{
			"eio_fd ret=-1 errno=EIO",
			"eio_fd_size=0 offset=0",
			"eio_async ret=0 errno=OK",
			"eio_wait ret=-1 errno=EIO",
			"eio_async_size=0",
			"eio_ckptfile ret=-1 errno=EIO",
			"eio_ckptfile_entries=0",
			"alive=1",
			"ok_after ret=0 errno=OK",
		}, "\n")
		if got != want {
			t.Errorf("guest output:\n%s\nwant:\n%s\nstderr:\n%s", got, want, c.GuestStderr())
		}
		entries, err := os.ReadDir(backing)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("left on the failing file system: %s", e.Name())
		}
		decodeImage(t, filepath.Join(good, "ok.img"))
	})
}
