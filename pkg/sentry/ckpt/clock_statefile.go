package ckpt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/ktime"
	"gvisor.dev/gvisor/pkg/state"
	"gvisor.dev/gvisor/pkg/state/statefile"
	"gvisor.dev/gvisor/pkg/state/wire"
)

// RewriteStateFileClock copies the gvisor-format state file in (an image directory's
// checkpoint.img, as runsc's checkpoint writes it: no HMAC key) to out with the kernel
// Timekeeper's saved clock replaced by what set returns for it (given the saved one: its
// saveMonotonic, saveRealtime and bootTime, the same three readings a tree manifest records). A restore
// from the copy continues CLOCK_MONOTONIC from the new MonotonicNS plus the realtime that passed
// since the new RealtimeNS (kernel.Timekeeper.SetClocks), instead of from the checkpointed
// sandbox's own clock: the template route of docs/upstream-gaps.md ("CLOCK_MONOTONIC of a
// restored container"). The restored Timekeeper keeps BootRealtimeNS as its boot time as is
// (SetClocks renews it only in a sandbox that was not restored): /proc/uptime is then the
// realtime since it, /proc/stat's btime its seconds.
//
// The decompressed state file holds two object streams (state.Save of the kernel's CPUID
// feature set, then of the kernel) and, when the pages are not in separate files, the memory
// files. The streams are copied object by object with pkg/state/wire; everything after them is
// copied as is. The metadata and compression level are kept (the timestamp is renewed). It is
// an error if the kernel stream holds no Timekeeper, or more than one.
func RewriteStateFileClock(out io.Writer, in io.Reader, set func(treefmt.Clock) treefmt.Clock) error {
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

// structEditor edits a struct of the type named name in place, given its type's fields and the
// stream's types (IDs count from 1). It returns an error if the struct cannot be edited.
type structEditor struct {
	name string
	edit func(s *wire.Struct, fields []string, types []*wire.Type) error
}

// timekeeperClockSetter returns the editor that replaces a Timekeeper's saved clock by what set
// returns for it.
func timekeeperClockSetter(set func(treefmt.Clock) treefmt.Clock) *structEditor {
	return &structEditor{
		name: (&kernel.Timekeeper{}).StateTypeName(),
		edit: func(s *wire.Struct, fields []string, types []*wire.Type) error {
			mono, err := intField(s, fields, "saveMonotonic")
			if err != nil {
				return err
			}
			real, err := intField(s, fields, "saveRealtime")
			if err != nil {
				return err
			}
			boot, err := timeField(s, fields, "bootTime", types)
			if err != nil {
				return err
			}
			c := set(treefmt.Clock{MonotonicNS: mono.get(), RealtimeNS: real.get(), BootRealtimeNS: boot.get()})
			mono.set(c.MonotonicNS)
			real.set(c.RealtimeNS)
			boot.set(c.BootRealtimeNS)
			return nil
		},
	}
}

// intSlot is an int64 field of an encoded struct: wire.Int, or wire.Nil when it is 0 (the
// encoder writes zero integers so).
type intSlot struct{ slot *wire.Object }

func (i intSlot) get() int64 {
	v, _ := (*i.slot).(wire.Int) // wire.Nil: 0.
	return int64(v)
}

func (i intSlot) set(v int64) { *i.slot = wire.Int(v) }

// newIntSlot checks that slot holds an integer; what names it in the error.
func newIntSlot(slot *wire.Object, what string) (intSlot, error) {
	switch v := (*slot).(type) {
	case wire.Int, wire.Nil:
		return intSlot{slot}, nil
	default:
		return intSlot{}, fmt.Errorf("%s is %T, not wire.Int", what, v)
	}
}

// intField returns the int64 field name of the Timekeeper s, whose type's fields are fields.
func intField(s *wire.Struct, fields []string, name string) (intSlot, error) {
	i := slices.Index(fields, name)
	if i < 0 {
		return intSlot{}, fmt.Errorf("Timekeeper fields %q lack %s", fields, name)
	}
	return newIntSlot(s.Field(i), "Timekeeper."+name)
}

// timeField returns the nanoseconds of the ktime.Time field name of the Timekeeper s, whose
// type's fields are fields; types are the stream's types (IDs count from 1).
func timeField(s *wire.Struct, fields []string, name string, types []*wire.Type) (intSlot, error) {
	i := slices.Index(fields, name)
	if i < 0 {
		return intSlot{}, fmt.Errorf("Timekeeper fields %q lack %s", fields, name)
	}
	t, ok := (*s.Field(i)).(*wire.Struct)
	if !ok {
		return intSlot{}, fmt.Errorf("Timekeeper.%s is %T, not a struct", name, *s.Field(i))
	}
	want := (&ktime.Time{}).StateTypeName()
	if t.TypeID == 0 || int(t.TypeID) > len(types) || types[t.TypeID-1].Name != want {
		return intSlot{}, fmt.Errorf("Timekeeper.%s is not a %s", name, want)
	}
	if f := types[t.TypeID-1].Fields; len(f) != 1 || f[0] != "ns" || t.Fields() != 1 {
		return intSlot{}, fmt.Errorf("Timekeeper.%s: %s has fields %q, want [ns]", name, want, f)
	}
	return newIntSlot(t.Field(0), "Timekeeper."+name+".ns")
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
				if err := ed.edit(x, t.Fields, types); err != nil {
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
