package ckpt

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/pkg/sentry/vfs"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// In-sandbox filesystems in a whole-container tree checkpoint (docs/tree-format.md): every tmpfs
// mounted in the caller's mount namespace (/tmp, /dev/shm, ...) and the upper layer of a root
// overlay whose upper layer is in the sandbox's memory are archived with gVisor's own tmpfs tar
// serializer (vfs.TarSerializer, what `runsc tar rootfs-upper` uses) while the tree is parked, so
// the files and the processes are one cut. The archive goes into a host memfd first (the
// serializer writes to an *os.File; memfd_create with flags 0 is in the sentry's seccomp filter),
// the processes are released, and the archives are streamed before the images.

// fsCapture is one archived filesystem.
type fsCapture struct {
	rec  treefmt.FilesystemArchive
	data *os.File // The tar, in a memfd.
}

// fsMount is one line of the caller's mountinfo that matters here.
type fsMount struct {
	point, fsType, mountOpts, superOpts string
}

// captureFilesystems archives the in-sandbox filesystems of t's mount namespace, for a
// whole-namespace freeze (root 0); a subtree freeze archives nothing. The caller closes the
// captures (closeCaptures).
func captureFilesystems(t *kernel.Task, root int32) ([]*fsCapture, error) {
	if root != 0 {
		return nil, nil
	}
	start := time.Now()
	rootVD := t.FSContext().RootDirectory()
	defer rootVD.DecRef(t)
	var buf bytes.Buffer
	// AsyncContext: a signal pending on the caller (a Go checkpt's preemption signal) must not
	// interrupt the listing; with t as the context it failed the freeze with EINTR now and then.
	if err := t.Kernel().VFS().GenerateProcMountInfo(t.AsyncContext(), rootVD, &buf); err != nil {
		return nil, fmt.Errorf("listing the mounts: %w", err)
	}
	mounts := parseMountInfo(buf.String())
	creds := auth.NewRootCredentials(t.Credentials().UserNamespace)
	var caps []*fsCapture
	ok := false
	defer func() {
		if !ok {
			closeCaptures(caps)
		}
	}()
	var total int64
	for _, m := range mounts {
		kind := ""
		switch {
		case m.point == "/" && m.fsType == "overlay":
			kind = treefmt.KindRootfsUpper
		case m.fsType == "tmpfs" && m.point != "/" && m.point != "/dev" &&
			!strings.HasPrefix(m.point, "/proc/") && !strings.HasPrefix(m.point, "/sys/"):
			kind = treefmt.KindTmpfs
		default:
			continue
		}
		vd, err := t.Kernel().VFS().GetDentryAt(t, creds, &vfs.PathOperation{Root: rootVD, Start: rootVD, Path: fspath.Parse(m.point)}, &vfs.GetDentryOptions{})
		if err != nil {
			return nil, fmt.Errorf("looking up mount %s: %w", m.point, err)
		}
		ts, isTar := vd.Mount().Filesystem().Impl().(vfs.TarSerializer)
		isRoot := vd.Dentry() == vd.Mount().Root()
		if !isTar || !isRoot {
			vd.DecRef(t)
			continue
		}
		c, err := archiveFilesystem(t, ts, m.point)
		vd.DecRef(t)
		if err != nil {
			if kind == treefmt.KindRootfsUpper {
				// An overlay whose upper layer is not in memory (a host directory): the
				// files are on the host already.
				t.Infof("ckpt: tree freeze: rootfs upper layer not archived: %v", err)
				continue
			}
			return nil, err
		}
		c.rec.Kind = kind
		c.rec.Flags = keepOptions(m.mountOpts, "ro", "nosuid", "nodev", "noexec", "noatime")
		if kind == treefmt.KindTmpfs {
			c.rec.Options = keepOptions(m.superOpts, "size", "nr_inodes", "mode")
		}
		c.rec.Archive = treefmt.TmpfsArchiveName(len(caps))
		caps = append(caps, c)
		total += c.rec.Size
	}
	ok = true
	if len(caps) > 0 {
		t.Infof("ckpt: tree freeze: archived %d in-sandbox filesystems (%d bytes) in %v", len(caps), total, time.Since(start))
	}
	return caps, nil
}

// archiveFilesystem writes the tar of ts into a new memfd.
func archiveFilesystem(t *kernel.Task, ts vfs.TarSerializer, point string) (*fsCapture, error) {
	fd, err := unix.MemfdCreate("runsc-ckpt-fs", 0)
	if err != nil {
		return nil, fmt.Errorf("memfd for the archive of %s: %w", point, err)
	}
	f := os.NewFile(uintptr(fd), "runsc-ckpt-fs")
	if err := ts.TarUpperLayer(t, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("archiving %s: %w", point, err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("archive of %s: %w", point, err)
	}
	return &fsCapture{rec: treefmt.FilesystemArchive{Path: point, Size: size}, data: f}, nil
}

// writeFilesystems streams the archives into sw and records them in the manifest.
func writeFilesystems(sw *treefmt.StreamWriter, caps []*fsCapture, m *treefmt.Manifest) error {
	for _, c := range caps {
		if err := sw.BeginFile(c.rec.Archive); err != nil {
			return err
		}
		hs := &treefmt.HashingSink{W: sw, Alg: sw.Digest()}
		if _, err := io.Copy(hs, c.data); err != nil {
			return fmt.Errorf("writing the archive of %s: %w", c.rec.Path, err)
		}
		sum, size := hs.Result()
		c.rec.SetDigest(sum)
		c.rec.Size = size
		m.Filesystems = append(m.Filesystems, c.rec)
	}
	return nil
}

// closeCaptures frees the archives' memory.
func closeCaptures(caps []*fsCapture) {
	for _, c := range caps {
		c.data.Close()
	}
}

// parseMountInfo returns the mounts of a /proc/PID/mountinfo text, sorted by mount point.
func parseMountInfo(s string) []fsMount {
	var out []fsMount
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		sep := -1
		for i, x := range f {
			if x == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+4 {
			continue
		}
		out = append(out, fsMount{point: unescapeMountPath(f[4]), mountOpts: f[5], fsType: f[sep+1], superOpts: f[sep+3]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].point < out[j].point })
	return out
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// keepOptions returns the options of the comma-separated list opts whose key is one of keys.
func keepOptions(opts string, keys ...string) string {
	var kept []string
	for _, o := range strings.Split(opts, ",") {
		k, _, _ := strings.Cut(o, "=")
		for _, want := range keys {
			if k == want {
				kept = append(kept, o)
			}
		}
	}
	return strings.Join(kept, ",")
}
