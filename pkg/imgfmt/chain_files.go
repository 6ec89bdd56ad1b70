package imgfmt

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ChainFiles is a chain opened from image files on the host (inspect --chain, squash).
type ChainFiles struct {
	*Chain
	Paths []string   // Paths[i] is where Images[i] was found.
	Sizes []int64    // Sizes[i] is its size in bytes.
	files []*os.File // Open files behind Readers.
}

// Close closes the image files.
func (c *ChainFiles) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// OpenChainFiles opens the image at path and, if it is incremental, its parents. A parent's path is
// the one its child recorded (a path in the sandbox, which is the host's when the sandbox's root
// is the host's or the image directory is bind-mounted at the same path); when nothing is there,
// the file of the same name next to the child is tried (a chain copied elsewhere). Each parent must
// be the image its child was frozen against (size, notes digest, freeze time: CheckParent); file
// attributes are not compared, since a copy keeps none of them.
func OpenChainFiles(path string) (*ChainFiles, error) {
	return OpenChainFilesWith(path, nil)
}

// OpenChainFilesWith is OpenChainFiles with a locator for parents: locate, if not nil, returns the
// host path of the parent ref names (ref.Image.Path is a path in the sandbox), child being the
// host path of the image that names it, or "" when it does not know it (then OpenChainFiles's rule
// applies). A tree checkpoint's images name their parents by a path only a restoring sandbox has
// (docs/incremental.md, "Container checkpoints"); treefmt's locator maps it back to the host.
func OpenChainFilesWith(path string, locate func(child string, ref *ParentRef) string) (*ChainFiles, error) {
	c := &ChainFiles{}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	var procs []*Process
	var readers []io.ReaderAt
	var ref *ParentRef
	for {
		if len(procs) == MaxChainDepth {
			return nil, formatErrorf(-1, "the chain of %s is deeper than %d images", c.Paths[0], MaxChainDepth)
		}
		if ref != nil && locate != nil {
			if p := locate(c.Paths[len(c.Paths)-1], ref); p != "" {
				path = p
			}
		}
		f, err := os.Open(path)
		if ref != nil && errors.Is(err, fs.ErrNotExist) {
			alt := filepath.Join(filepath.Dir(c.Paths[len(c.Paths)-1]), filepath.Base(ref.Image.Path))
			if f2, err2 := os.Open(alt); err2 == nil {
				f, err, path = f2, nil, alt
			}
		}
		if err != nil {
			return nil, fmt.Errorf("imgfmt: opening image %d of the chain: %w", len(procs), err)
		}
		c.files = append(c.files, f)
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("imgfmt: %w", err)
		}
		p, err := Decode(f, st.Size())
		if err != nil {
			return nil, fmt.Errorf("imgfmt: %s: %w", path, err)
		}
		if ref != nil {
			digest, err := NotesDigest(f, st.Size())
			if err != nil {
				return nil, fmt.Errorf("imgfmt: %s: %w", path, err)
			}
			if err := CheckParent(ref, p, st.Size(), digest); err != nil {
				return nil, fmt.Errorf("imgfmt: %w", err)
			}
		}
		procs = append(procs, p)
		readers = append(readers, f)
		c.Paths = append(c.Paths, path)
		c.Sizes = append(c.Sizes, st.Size())
		if p.Parent == nil {
			break
		}
		ref = p.Parent
		path = ref.Image.Path
	}
	chain, err := NewChain(procs, readers)
	if err != nil {
		return nil, err
	}
	c.Chain = chain
	ok = true
	return c, nil
}
