package ckpt

import (
	"fmt"
	"reflect"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

// MADV_DONTFORK ranges (issue 8 item 7, docs/notes-thaw.md "Process attributes"). gVisor keeps the
// flag in each VMA (mm.vma.dontfork) and has a setter (MemoryManager.SetDontFork) but no getter:
// neither /proc/PID/maps nor smaps shows it. The freeze reads it through the saved fields of the
// VMA set, a B-tree (vmaSet.root → vmanode.nrSegments, hasChildren, keys, values, children →
// vma.dontfork), walked inside a ReadMapsDataInto callback, which holds the address space's
// mappingMu for reading, so the tree does not change under the walk. The thaw calls SetDontFork
// on each range at commit, after the mappings are in place. docs/upstream-gaps.md "MADV_DONTFORK".

// maxVMATreeDepth bounds the walk (a B-tree of minimum degree 8 holding every possible VMA is far
// shallower): a corrupted or changed structure ends the walk instead of recursing forever.
const maxVMATreeDepth = 32

// vmaTypes returns zero values of mm's (unexported) VMA set, node and VMA types, for checking their
// saved fields.
func vmaTypes() (set, node, vma stateifyObject) {
	set = stateZeroOfField(new(mm.MemoryManager), "vmas")
	node = stateZeroOfField(set, "root")
	f, _ := reflect.TypeOf(node).Elem().FieldByName("values")
	return set, node, reflect.New(f.Type.Elem()).Interface().(stateifyObject)
}

// dontForkRanges returns the ranges of m's VMAs marked MADV_DONTFORK, merged and ascending.
func dontForkRanges(t *kernel.Task, m *mm.MemoryManager) ([]imgfmt.AddrRange, error) {
	var out []imgfmt.AddrRange
	var err error
	walked := false
	m.ReadMapsDataInto(t, func(hostarch.Addr, hostarch.Addr, hostarch.AccessType, string, uint64, uint32, uint32, uint64, string) {
		if walked {
			return
		}
		walked = true
		var root reflect.Value
		if root, err = stateField(m, "vmas"); err == nil {
			if root, err = stateSubfield(root, "root", reflect.Struct); err == nil {
				err = walkVMANode(root, 0, &out)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("MADV_DONTFORK ranges: %w", err)
	}
	return out, nil
}

// walkVMANode appends the DONTFORK ranges of the subtree at n (a vmanode struct) in address order:
// child 0, segment 0, child 1, …, segment n−1, child n.
func walkVMANode(n reflect.Value, depth int, out *[]imgfmt.AddrRange) error {
	if depth > maxVMATreeDepth {
		return fmt.Errorf("VMA tree deeper than %d (gVisor changed?)", maxVMATreeDepth)
	}
	var f [5]reflect.Value
	for i, c := range []struct {
		name string
		kind reflect.Kind
	}{{"nrSegments", reflect.Int}, {"hasChildren", reflect.Bool}, {"keys", reflect.Array}, {"values", reflect.Array}, {"children", reflect.Array}} {
		v, err := stateSubfield(n, c.name, c.kind)
		if err != nil {
			return err
		}
		f[i] = v
	}
	nr, hasChildren, keys, values, children := int(f[0].Int()), f[1].Bool(), f[2], f[3], f[4]
	if nr < 0 || nr > keys.Len() || nr > values.Len() || nr >= children.Len() {
		return fmt.Errorf("VMA node with %d segments (gVisor changed?)", nr)
	}
	child := func(i int) error {
		if !hasChildren {
			return nil
		}
		c := children.Index(i)
		if c.Kind() != reflect.Pointer || c.IsNil() {
			return fmt.Errorf("VMA node without its child %d", i)
		}
		return walkVMANode(c.Elem(), depth+1, out)
	}
	for i := range nr {
		if err := child(i); err != nil {
			return err
		}
		df, err := stateSubfield(values.Index(i), "dontfork", reflect.Bool)
		if err != nil {
			return err
		}
		if !df.Bool() {
			continue
		}
		r := keys.Index(i)
		if r.Type() != reflect.TypeOf(hostarch.AddrRange{}) {
			return fmt.Errorf("VMA key is a %s, not a hostarch.AddrRange (gVisor changed?)", r.Type())
		}
		start, end := r.FieldByName("Start"), r.FieldByName("End")
		a := imgfmt.AddrRange{Start: start.Uint(), End: end.Uint()}
		if k := len(*out); k > 0 && (*out)[k-1].End == a.Start {
			(*out)[k-1].End = a.End
		} else {
			*out = append(*out, a)
		}
	}
	return child(nr)
}

// restoreDontFork marks the image's MADV_DONTFORK ranges in t's address space (at commit, after the
// mappings are in place). A failure is logged: the commit must go on.
func restoreDontFork(t *kernel.Task, ranges []imgfmt.AddrRange) {
	m := t.MemoryManager()
	if m == nil {
		return
	}
	for _, a := range ranges {
		if err := m.SetDontFork(hostarch.Addr(a.Start), a.End-a.Start, true); err != nil {
			t.Warningf("ckpt: thaw: MADV_DONTFORK [%#x, %#x): %v (a child forked later gets the range)", a.Start, a.End, err)
		}
	}
}
