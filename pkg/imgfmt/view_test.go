package imgfmt

import "testing"

// processView is what the codec's tests check of a decoded process through the exported view
// (view.go): its format revision, working directory and objects. Package inspect renders the whole
// summary and tests it; it imports this package, so these tests cannot use it.
type processView struct {
	Format  string
	VM      struct{ Cwd string }
	Objects []objectView
}

// objectView is one object of a processView.
type objectView struct {
	Kind   string
	Detail string
}

// viewOf returns p's processView.
func viewOf(p *Process) *processView {
	v := &processView{Format: FormatVersion(p)}
	if p.Cwd != nil {
		v.VM.Cwd = p.Cwd.Path
	}
	for i := range p.Objects {
		v.Objects = append(v.Objects, objectView{Kind: p.Objects[i].KindName(), Detail: p.Objects[i].Detail()})
	}
	return v
}

func TestFileKindName(t *testing.T) {
	for k, want := range map[FileKind]string{FileRegular: "regular", FileFIFO: "fifo", FileEventFD: "eventfd", FileOther: "other"} {
		if got, ok := k.Name(); !ok || got != want {
			t.Errorf("FileKind(%d).Name() = %q, %v, want %q", k, got, ok, want)
		}
	}
	for _, k := range []FileKind{0, FileOther + 1, 1 << 31} {
		if got, ok := k.Name(); ok {
			t.Errorf("FileKind(%d).Name() = %q, true for an unknown kind", k, got)
		}
	}
}
