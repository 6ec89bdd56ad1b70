package upstreamsrc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const sample = `package p

import (
	"fmt"
	alias "example.com/x/cmd"
)

const (
	a    = "one"
	b, c = "two", 3
)

var version = "v"

type T struct{}

type U struct {
	T
	*alias.Cmd
	n int
}

// Name returns the name.
func (*T) Name() string { return "tee" }

func F(x int) int {
	// A comment.
	if x > 0 {
		return x + 1
	}
	fmt.Println(alias.X, "[marker]")
	return 0
}
`

func parseSample(t *testing.T, src string) *File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFingerprintIgnoresCommentsAndLayout(t *testing.T) {
	base, err := parseSample(t, sample).Fingerprint("F")
	if err != nil {
		t.Fatal(err)
	}
	relaid := `package p

func F(x int) int { // Another comment.
	if x > 0 { return x + 1 }
	fmt.Println(alias.X, "[marker]")

	return 0
}
`
	if got, err := parseSample(t, relaid).Fingerprint("F"); err != nil || got != base {
		t.Errorf("re-laid F: fingerprint %s, %v; want %s", got, err, base)
	}
	changed := `package p

func F(x int) int {
	if x >= 0 {
		return x + 1
	}
	fmt.Println(alias.X, "[marker]")
	return 0
}
`
	if got, err := parseSample(t, changed).Fingerprint("F"); err != nil || got == base {
		t.Errorf("changed F: fingerprint %s, %v; want one other than %s", got, err, base)
	}
	if _, err := parseSample(t, sample).Fingerprint("G"); err == nil {
		t.Error("Fingerprint of a missing function: no error")
	}
}

func TestReads(t *testing.T) {
	f := parseSample(t, sample)
	if v, err := f.StringConst("a"); err != nil || v != "one" {
		t.Errorf("StringConst(a) = %q, %v", v, err)
	}
	if v, err := f.StringConst("b"); err != nil || v != "two" {
		t.Errorf("StringConst(b) = %q, %v", v, err)
	}
	if _, err := f.StringConst("c"); err == nil {
		t.Error("StringConst(c) (an int): no error")
	}
	if !f.HasVar("version") || f.HasVar("a") {
		t.Error("HasVar: wrong answer")
	}
	if !f.HasStringLit("[marker]") || f.HasStringLit("[other]") {
		t.Error("HasStringLit: wrong answer")
	}
	if im := f.Imports(); im["alias"] != "example.com/x/cmd" || im["fmt"] != "fmt" {
		t.Errorf("Imports = %v", im)
	}
	if v, err := MethodStringResult([]*File{f}, "T.Name"); err != nil || v != "tee" {
		t.Errorf("MethodStringResult(T.Name) = %q, %v", v, err)
	}
	if _, err := MethodStringResult([]*File{f}, "F"); err == nil || errors.Is(err, ErrNoMethod) {
		t.Errorf("MethodStringResult(F) (not a string literal): %v", err)
	}
	if _, err := MethodStringResult([]*File{f}, "U.Name"); !errors.Is(err, ErrNoMethod) {
		t.Errorf("MethodStringResult(U.Name) (none): %v, want ErrNoMethod", err)
	}
	refs, err := EmbeddedTypes([]*File{f}, "U")
	if want := []TypeRef{{Name: "T"}, {Pkg: "example.com/x/cmd", Name: "Cmd"}}; err != nil || !slices.Equal(refs, want) {
		t.Errorf("EmbeddedTypes(U) = %v, %v; want %v", refs, err, want)
	}
}

func TestModuleDirAndGoRoot(t *testing.T) {
	dir, err := ModuleDir("gvisor.dev/gvisor")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Errorf("ModuleDir: %v", err)
	}
	root, err := GoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "src", "runtime", "runtime2.go")); err != nil {
		t.Errorf("GoRoot: %v", err)
	}
}

func TestCheckMirrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := ParseFile(filepath.Join(dir, "p.go"))
	if err != nil {
		t.Fatal(err)
	}
	fp, err := f.Fingerprint("F")
	if err != nil {
		t.Fatal(err)
	}
	if errs := CheckMirrors(dir, []Mirror{{File: "p.go", Func: "F", Ours: "ours.go", Fingerprint: fp}}); len(errs) != 0 {
		t.Errorf("matching fingerprint: %v", errs)
	}
	errs := CheckMirrors(dir, []Mirror{
		{File: "p.go", Func: "F", Ours: "ours.go", Fingerprint: "0000"},
		{File: "p.go", Func: "Gone", Ours: "ours.go", Fingerprint: fp},
		{File: "q.go", Func: "F", Ours: "ours.go", Fingerprint: fp},
	})
	if len(errs) != 3 {
		t.Fatalf("CheckMirrors: %d errors, want 3: %v", len(errs), errs)
	}
	for i, want := range []string{"p.go F changed upstream", "no function Gone", "q.go"} {
		if !strings.Contains(errs[i].Error(), want) {
			t.Errorf("error %d %q lacks %q", i, errs[i], want)
		}
	}
}

// TestCheckGVisorMirrors: a function of the gVisor module with its real fingerprint passes, the
// same function with another fingerprint and a file that is not there each give one error.
func TestCheckGVisorMirrors(t *testing.T) {
	dir, err := ModuleDir("gvisor.dev/gvisor")
	if err != nil {
		t.Fatal(err)
	}
	const file, fn = "pkg/sentry/kernel/timekeeper.go", "Timekeeper.BootTime"
	f, err := ParseFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	fp, err := f.Fingerprint(fn)
	if err != nil {
		t.Fatal(err)
	}
	if errs := CheckGVisorMirrors([]Mirror{{File: file, Func: fn, Ours: "here", Fingerprint: fp}}); len(errs) != 0 {
		t.Errorf("the recorded fingerprint: %v, want no error", errs)
	}
	errs := CheckGVisorMirrors([]Mirror{
		{File: file, Func: fn, Ours: "here", Fingerprint: "0000000000000000"},
		{File: "pkg/no/such/file.go", Func: "F", Ours: "here", Fingerprint: fp},
	})
	if len(errs) != 2 {
		t.Errorf("a changed function and a missing file: %v, want 2 errors", errs)
	}
}
