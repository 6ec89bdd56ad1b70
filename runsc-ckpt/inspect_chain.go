package main

import (
	"fmt"
	"io"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// printChain opens the chain of the image at path (its parents checked as a thaw checks them,
// file attributes aside) and lists it, child first: path, size, the bytes of memory it stores and
// when it was frozen.
func printChain(w io.Writer, path string) error {
	c, err := imgfmt.OpenChainFiles(path)
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
