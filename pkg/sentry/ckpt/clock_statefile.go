package ckpt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/state"
	"gvisor.dev/gvisor/pkg/state/statefile"
	"gvisor.dev/gvisor/pkg/state/wire"
)

// RewriteStateFileClock copies the gvisor-format state file in (an image directory's
// checkpoint.img, as runsc's checkpoint writes it: no HMAC key) to out with the kernel
// Timekeeper's saveMonotonic and saveRealtime (the sandbox's CLOCK_MONOTONIC and CLOCK_REALTIME
// when it was saved, in nanoseconds) replaced by what set returns for them. A restore from the
// copy continues CLOCK_MONOTONIC from the new saveMonotonic plus the realtime that passed since
// the new saveRealtime (kernel.Timekeeper.SetClocks), instead of from the checkpointed sandbox's
// own clock: the template route of docs/upstream-gaps.md ("CLOCK_MONOTONIC of a restored
// container").
//
// The decompressed state file holds two object streams (state.Save of the kernel's CPUID
// feature set, then of the kernel) and, when the pages are not in separate files, the memory
// files. The streams are copied object by object with pkg/state/wire; everything after them is
// copied as is. The metadata and compression level are kept (the timestamp is renewed). It is
// an error if the kernel stream holds no Timekeeper, or more than one.
func RewriteStateFileClock(out io.Writer, in io.Reader, set func(mono, real int64) (int64, int64)) error {
	rc, md, err := statefile.NewReader(io.NopCloser(in), nil)
	if err != nil {
		return fmt.Errorf("reading the state file: %w", err)
	}
	defer rc.Close()
	for k := range md {
		if strings.HasPrefix(k, "_") { // Written by statefile itself (_timestamp).
			delete(md, k)
		}
	}
	wc, err := statefile.NewWriter(out, nil, md)
	if err != nil {
		return fmt.Errorf("writing the state file: %w", err)
	}
	br := bufio.NewReaderSize(rc, 1<<20)
	bw := bufio.NewWriterSize(wc, 1<<20)
	if _, err := copyStateStream(bw, br, nil); err != nil {
		wc.Close()
		return fmt.Errorf("the CPUID stream: %w", err)
	}
	n, err := copyStateStream(bw, br, timekeeperClockSetter(set))
	if err != nil {
		wc.Close()
		return fmt.Errorf("the kernel stream: %w", err)
	}
	if n != 1 {
		wc.Close()
		return fmt.Errorf("the kernel stream holds %d Timekeepers, want 1", n)
	}
	if _, err := io.Copy(bw, br); err != nil {
		wc.Close()
		return fmt.Errorf("copying the rest of the state file: %w", err)
	}
	if err := bw.Flush(); err != nil {
		wc.Close()
		return err
	}
	return wc.Close()
}

// structEditor edits a struct of the type named name, whose fields are given, in place. It
// returns an error if the struct cannot be edited.
type structEditor struct {
	name string
	edit func(s *wire.Struct, fields []string) error
}

// timekeeperClockSetter returns the editor that replaces a Timekeeper's saved clock readings by
// what set returns for them.
func timekeeperClockSetter(set func(mono, real int64) (int64, int64)) *structEditor {
	return &structEditor{
		name: (&kernel.Timekeeper{}).StateTypeName(),
		edit: func(s *wire.Struct, fields []string) error {
			monoIdx, realIdx := slices.Index(fields, "saveMonotonic"), slices.Index(fields, "saveRealtime")
			if monoIdx < 0 || realIdx < 0 {
				return fmt.Errorf("Timekeeper fields %q lack saveMonotonic/saveRealtime", fields)
			}
			mono, ok1 := (*s.Field(monoIdx)).(wire.Int)
			real, ok2 := (*s.Field(realIdx)).(wire.Int)
			if !ok1 || !ok2 {
				return fmt.Errorf("Timekeeper's saveMonotonic/saveRealtime are %T/%T, not wire.Int", *s.Field(monoIdx), *s.Field(realIdx))
			}
			m, r := set(int64(mono), int64(real))
			*s.Field(monoIdx), *s.Field(realIdx) = wire.Int(m), wire.Int(r)
			return nil
		},
	}
}

// copyStateStream copies one object stream (a state.Save) from r to w, applying ed (if not nil)
// to every struct of its type, and returns how many it edited.
func copyStateStream(w io.Writer, r io.Reader, ed *structEditor) (edited int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed state stream: %v", p)
		}
	}()
	wr := &wire.Reader{Reader: r}
	ww := &wire.Writer{Writer: w}
	n, object, err := state.ReadHeader(wr)
	if err != nil {
		return 0, err
	}
	if !object {
		return 0, errors.New("not an object stream")
	}
	if err := state.WriteHeader(ww, n, true); err != nil {
		return 0, err
	}
	var types []*wire.Type // Type IDs count from 1, in order of appearance.
	for i := uint64(0); i < n; {
		obj := wire.Load(wr)
		switch o := obj.(type) {
		case *wire.Type:
			types = append(types, o)
			wire.Save(ww, o)
			continue
		case wire.Uint:
		default:
			return edited, fmt.Errorf("wanted a type or an object ID, got %T", obj)
		}
		i++
		enc := wire.Load(wr)
		if ed != nil {
			k, err := editStructs(enc, types, ed)
			if err != nil {
				return edited, fmt.Errorf("object %d: %w", obj, err)
			}
			edited += k
		}
		wire.Save(ww, obj)
		wire.Save(ww, enc)
	}
	return edited, nil
}

// editStructs applies ed to every struct of its type within obj and returns how many it edited.
func editStructs(obj wire.Object, types []*wire.Type, ed *structEditor) (int, error) {
	edited := 0
	var walk func(o wire.Object) error
	walk = func(o wire.Object) error {
		switch x := o.(type) {
		case *wire.Struct:
			if x.TypeID != 0 && int(x.TypeID) <= len(types) && types[x.TypeID-1].Name == ed.name {
				t := types[x.TypeID-1]
				if x.Fields() != len(t.Fields) {
					return fmt.Errorf("%s has %d fields, its type %d", t.Name, x.Fields(), len(t.Fields))
				}
				if err := ed.edit(x, t.Fields); err != nil {
					return err
				}
				edited++
				return nil
			}
			for i := 0; i < x.Fields(); i++ {
				if err := walk(*x.Field(i)); err != nil {
					return err
				}
			}
		case *wire.Array:
			for _, c := range x.Contents {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *wire.Map:
			for i := range x.Keys {
				if err := walk(x.Keys[i]); err != nil {
					return err
				}
				if err := walk(x.Values[i]); err != nil {
					return err
				}
			}
		case *wire.Interface:
			return walk(x.Value)
		}
		return nil
	}
	err := walk(obj)
	return edited, err
}
