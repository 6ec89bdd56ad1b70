package treeincr

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// SquashDir writes into out, a new directory, the complete tree checkpoint that the incremental
// checkpoint in dir and its parents stand for: every incremental image squashed with its chain
// (imgfmt.Chain.Squash), every other file copied (holes kept), the manifest without a parent. It
// restores exactly as dir does and needs none of the parents. On failure out is removed.
func SquashDir(dir, out string) (err error) {
	m, err := treefmt.CheckDir(dir)
	if err != nil {
		return err
	}
	chain, err := OpenChain(dir, m, false)
	if err != nil {
		return err
	}
	if err := os.Mkdir(out, 0o700); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(out)
		}
	}()
	locate := ChainLocator(chain)
	for i := range m.Processes {
		p := &m.Processes[i]
		if p.Image == "" {
			continue
		}
		if p.ParentImage == "" {
			if err := copySparse(filepath.Join(dir, p.Image), filepath.Join(out, p.Image)); err != nil {
				return err
			}
			continue
		}
		if err := squashImage(filepath.Join(dir, p.Image), filepath.Join(out, p.Image), locate, p); err != nil {
			return fmt.Errorf("pid %d: %w", p.PID, err)
		}
		p.ParentImage = ""
	}
	for _, fa := range m.Filesystems {
		if err := copySparse(filepath.Join(dir, fa.Archive), filepath.Join(out, fa.Archive)); err != nil {
			return err
		}
	}
	m.Parent = nil
	if m.Version == treefmt.VersionParent {
		m.Version = treefmt.Version
	}
	m.RaiseVersion()
	if err := writeManifest(out, m); err != nil {
		return err
	}
	_, err = treefmt.CheckDir(out)
	return err
}

// squashImage writes the complete image of the chain at in to out and records its size and
// digest in p.
func squashImage(in, out string, locate func(string, *imgfmt.ParentRef) string, p *treefmt.Process) error {
	c, err := imgfmt.OpenChainFilesWith(in, locate)
	if err != nil {
		return err
	}
	defer c.Close()
	q, err := c.Squash()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	fs := treefmt.NewSparseFile(f)
	hs := &treefmt.HashingSink{W: fs, Alg: digestAlg(p)}
	if err := imgfmt.Encode(hs, q); err != nil {
		f.Close()
		return err
	}
	if err := fs.Close(); err != nil {
		return err
	}
	sum, size := hs.Result()
	p.SetDigest(sum)
	p.ImageSize = size
	return nil
}

// copySparse copies the file in to out (new), leaving all-zero 4 KiB blocks as holes.
func copySparse(in, out string) error {
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	s := treefmt.NewSparseFile(dst)
	buf := make([]byte, 1<<20)
	zero := make([]byte, 4096)
	for {
		n, rerr := io.ReadFull(src, buf)
		for b := buf[:n]; len(b) > 0; {
			k := min(len(b), len(zero))
			var werr error
			if bytes.Equal(b[:k], zero[:k]) {
				werr = s.Hole(int64(k))
			} else {
				_, werr = s.Write(b[:k])
			}
			if werr != nil {
				dst.Close()
				return werr
			}
			b = b[k:]
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			dst.Close()
			return rerr
		}
	}
	return s.Close()
}
