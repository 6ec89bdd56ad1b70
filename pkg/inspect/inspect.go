// Package inspect is the logic of `runsc-ckpt inspect`: it validates a checkpoint image (or a tree
// checkpoint directory) and describes what it holds, for people (WriteText) and programs
// (WriteJSON). It sits beside the codec (pkg/imgfmt), which stays a strict codec: inspect decodes
// with it and adds the rendering, the totals and the on-disk sizes (SEEK_DATA/SEEK_HOLE).
package inspect

import (
	"fmt"
	"io"
	"os"
)

// Report is what inspect prints: the Summary of an image or the TreeSummary of a tree checkpoint.
type Report interface {
	// WriteText writes the report for people; names from the image are escaped (imgfmt.Printable).
	WriteText(w io.Writer) error
	// WriteJSON writes the report as indented JSON.
	WriteJSON(w io.Writer) error
}

// Path inspects path: a tree checkpoint if it is a directory, else an image file. The error says
// which of the two path was taken for.
func Path(path string) (Report, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		s, err := Tree(path)
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid tree checkpoint: %w", path, err)
		}
		return s, nil
	}
	s, err := File(path)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// File decodes and summarizes the image file at path; the summary has the bytes stored on disk.
func File(path string) (*Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	s, err := Image(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid checkpoint image: %w", path, err)
	}
	return s, nil
}
