package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treeincr"
)

// printChain opens the chain of the image at path (its parents checked as a thaw checks them,
// file attributes aside) and lists it, child first: path, size, the bytes of memory it stores and
// when it was frozen. For a tree checkpoint directory it lists the chain of directories (found and
// checked as restore does) and then each process's chain of images.
func printChain(w io.Writer, path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() && treefmt.IsTreeDir(path) {
		return printDirChain(w, path)
	}
	return printImageChain(w, path, nil)
}

// printDirChain lists the chain of the tree checkpoint in dir.
func printDirChain(w io.Writer, dir string) error {
	m, err := treefmt.CheckDir(dir)
	if err != nil {
		return err
	}
	chain, err := treeincr.OpenChain(dir, m, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "checkpoint chain:\t%d directories, child first\n  0\t%s\n", len(chain)+1, dir)
	for i, c := range chain {
		fmt.Fprintf(w, "  %d\t%s (seen in the sandbox as %s)\n", i+1, c.Dir, c.SandboxPath)
	}
	locate := treeincr.ChainLocator(chain)
	for _, p := range m.Processes {
		if p.Image == "" {
			continue
		}
		fmt.Fprintf(w, "pid %d:\n", p.PID)
		if err := printImageChain(w, filepath.Join(dir, p.Image), locate); err != nil {
			return fmt.Errorf("pid %d: %w", p.PID, err)
		}
	}
	return nil
}

// printImageChain lists the chain of the image at path; locate finds parents (nil: their
// recorded paths, imgfmt.OpenChainFiles).
func printImageChain(w io.Writer, path string, locate func(string, *imgfmt.ParentRef) string) error {
	c, err := imgfmt.OpenChainFilesWith(path, locate)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(w, "chain:\t%d images, child first\n", len(c.Images))
	for i, p := range c.Images {
		var stored, delta uint64
		for j := range p.Mappings {
			m := &p.Mappings[j]
			stored += m.StoredSize()
			if m.Delta {
				delta++
			}
		}
		kind := "complete"
		if p.Parent != nil {
			kind = fmt.Sprintf("incremental, %d delta mappings", delta)
		}
		fmt.Fprintf(w, "  %d\t%s\t%d bytes, %d of memory stored (%s), frozen %s\n", i, c.Paths[i], c.Sizes[i], stored, kind,
			time.Unix(0, p.Info.FreezeTimeNano).UTC().Format(time.RFC3339Nano))
	}
	return nil
}
