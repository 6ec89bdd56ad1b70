package treeincr

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// ParentSpec is the parent an incremental tree checkpoint is made against (MakeIncrementalDir).
type ParentSpec struct {
	// Path is the parent directory as given (--parent-path): relative to the new checkpoint's
	// directory, or absolute. It is recorded as is.
	Path string
	// Dir is the parent's host directory.
	Dir string
	// HostRoot says the container's root is the host's /: the images then name the parent by its
	// host path, which the sandbox sees; otherwise by treefmt.ParentSandboxPath (a restore mounts it there).
	HostRoot bool
}

// IncrStats says what MakeIncrementalDir did.
type IncrStats struct {
	Images      int   // Process images in the checkpoint.
	Incremental int   // Of which made incremental.
	FullBytes   int64 // Bytes of data (holes excluded) the complete images held.
	StoredBytes int64 // Bytes of data the checkpoint's images hold now.
}

// MakeIncrementalDir turns the complete tree checkpoint in dir (not yet published: the staging
// directory of SplitStreamReplaceWith) into an incremental one against the checkpoint ps names:
// each process image whose pid has an image in the parent is rewritten as an incremental image
// against it (imgfmt.MakeIncremental: the pages that differ from the parent's chain, compared page
// by page), every other image stays complete, and the manifest records the parent (version 3).
// An image whose parent chain is already imgfmt.MaxChainDepth deep stays complete too.
func MakeIncrementalDir(dir string, ps ParentSpec) (IncrStats, error) {
	var st IncrStats
	m, err := treefmt.CheckDir(dir)
	if err != nil {
		return st, err
	}
	pdir, err := filepath.Abs(ps.Dir)
	if err != nil {
		return st, err
	}
	if same, _ := sameDir(pdir, dir); same {
		return st, fmt.Errorf("the parent checkpoint %s is the checkpoint being written", ps.Dir)
	}
	digest, err := treefmt.ManifestDigest(pdir)
	if err != nil {
		return st, fmt.Errorf("parent checkpoint %s: %w", ps.Dir, err)
	}
	pm, err := treefmt.CheckDir(pdir)
	if err != nil {
		return st, fmt.Errorf("parent checkpoint %s: %w", ps.Dir, err)
	}
	sandboxPath := treefmt.ParentSandboxPath(digest)
	if ps.HostRoot {
		sandboxPath = pdir
	}
	chain, err := treefmt.OpenDirChain(pdir, pm, false)
	if err != nil {
		return st, err
	}
	locate := ChainLocator(chain)
	for i := range m.Processes {
		p := &m.Processes[i]
		if p.Image == "" {
			continue
		}
		st.Images++
		full, err := dataBytes(filepath.Join(dir, p.Image))
		if err != nil {
			return st, err
		}
		st.FullBytes += full
		pp := pm.Process(p.PID)
		if pp == nil || pp.Image == "" {
			st.StoredBytes += full
			continue // New since the parent: a complete image.
		}
		made, err := incrementalImage(dir, p, filepath.Join(pdir, pp.Image), path.Join(sandboxPath, pp.Image), locate)
		if err != nil {
			return st, fmt.Errorf("pid %d: %w", p.PID, err)
		}
		if made {
			p.ParentImage = pp.Image
			st.Incremental++
		}
		stored, err := dataBytes(filepath.Join(dir, p.Image))
		if err != nil {
			return st, err
		}
		st.StoredBytes += stored
	}
	m.Version = max(m.Version, treefmt.VersionParent)
	m.Parent = &treefmt.ParentDir{Path: ps.Path, HostPath: pdir, SandboxPath: sandboxPath, ManifestSHA256: digest}
	m.RaiseVersion()
	if err := writeManifest(dir, m); err != nil {
		return st, err
	}
	return st, nil
}

// incrementalImage rewrites p's image in dir as an incremental image against the image at
// parentPath (a host path; the image records sandboxParent), updating p's size and digest. It
// reports false, leaving the image complete, when the parent's chain is already as deep as a
// chain may be.
func incrementalImage(dir string, p *treefmt.Process, parentPath, sandboxParent string, locate func(string, *imgfmt.ParentRef) string) (bool, error) {
	c, err := imgfmt.OpenChainFilesWith(parentPath, locate)
	if err != nil {
		return false, fmt.Errorf("%w: %v", treefmt.ErrStaleParent, err)
	}
	defer c.Close()
	if len(c.Images) >= imgfmt.MaxChainDepth {
		return false, nil
	}
	pf, err := os.Stat(parentPath)
	if err != nil {
		return false, err
	}
	notes, err := imgfmt.NotesDigest(c.Readers[0], c.Sizes[0])
	if err != nil {
		return false, fmt.Errorf("parent image %s: %w", parentPath, err)
	}
	ref := &imgfmt.ParentRef{
		// No times, device or inode: the image is found in another sandbox, maybe as a copy
		// (an engine's export and import); it is identified by size, notes digest and freeze
		// time (the sentry's thaw compares the size only for such a handle).
		Image:          imgfmt.FileHandle{Path: sandboxParent, Mode: syscall.S_IFREG | uint32(pf.Mode().Perm()), Size: c.Sizes[0]},
		Size:           c.Sizes[0],
		NotesSHA256:    notes,
		FreezeTimeNano: c.Images[0].Info.FreezeTimeNano,
	}
	src := filepath.Join(dir, p.Image)
	f, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	proc, err := imgfmt.Decode(f, fi.Size())
	if err != nil {
		return false, fmt.Errorf("image %s: %w", p.Image, err)
	}
	if err := imgfmt.MakeIncremental(proc, c.Chain, ref); err != nil {
		return false, err
	}
	tmp := filepath.Join(dir, "."+p.Image+".incr")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return false, err
	}
	fs := treefmt.NewSparseFile(out)
	hs := &treefmt.HashingSink{W: fs, Alg: digestAlg(p)}
	if err := imgfmt.Encode(hs, proc); err != nil {
		out.Close()
		os.Remove(tmp)
		return false, fmt.Errorf("writing the incremental image of %s: %w", p.Image, err)
	}
	if err := fs.Close(); err != nil {
		os.Remove(tmp)
		return false, err
	}
	if err := os.Rename(tmp, src); err != nil {
		os.Remove(tmp)
		return false, err
	}
	sum, size := hs.Result()
	p.SetDigest(sum)
	p.ImageSize = size
	return true, nil
}

// dataBytes returns the bytes a file's blocks take on disk (holes cost nothing).
func dataBytes(name string) (int64, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return 0, err
	}
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		return s.Blocks * 512, nil
	}
	return fi.Size(), nil
}

// sameDir reports whether a and b are the same directory.
func sameDir(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// writeManifest replaces dir's manifest with m.
func writeManifest(dir string, m *treefmt.Manifest) error {
	tmp := filepath.Join(dir, "."+treefmt.ManifestName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := m.Encode(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, treefmt.ManifestName))
}

// digestAlg returns the algorithm of the digest the manifest records for p's image: a rewritten
// image keeps it (the checkpoint was taken with it; --digest).
func digestAlg(p *treefmt.Process) treefmt.DigestAlg {
	if d, err := p.RecordedDigest(); err == nil {
		return d.Alg
	}
	return treefmt.DefaultDigest
}
