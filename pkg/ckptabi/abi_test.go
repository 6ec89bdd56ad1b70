package ckptabi

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// repoFile returns the path of a file of the repository (the tests run in pkg/ckptabi).
func repoFile(name string) string { return filepath.Join("..", "..", name) }

// headerMacros parses the object-like macros of include/ckpt.h: name to integer value. A #define
// with a value that is not a plain integer fails the test (this parser would not see its value);
// the include guard (no value) is left out.
func headerMacros(t *testing.T) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile(repoFile("include/ckpt.h"))
	if err != nil {
		t.Fatal(err)
	}
	def := regexp.MustCompile(`^\s*#\s*define\s+(\w+)(.*)$`)
	macros := map[string]int64{}
	for i, line := range strings.Split(string(b), "\n") {
		m := def.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, val := m[1], strings.TrimSpace(m[2])
		if i := strings.Index(val, "/*"); i >= 0 {
			val = strings.TrimSpace(val[:i])
		}
		if val == "" && strings.HasSuffix(name, "_H") {
			continue // The include guard.
		}
		n, err := strconv.ParseInt(val, 0, 64)
		if err != nil {
			t.Fatalf("include/ckpt.h:%d: #define %s %q: not an integer this test can compare", i+1, name, val)
		}
		if _, dup := macros[name]; dup {
			t.Fatalf("include/ckpt.h:%d: %s defined twice", i+1, name)
		}
		macros[name] = n
	}
	if len(macros) == 0 {
		t.Fatal("include/ckpt.h defines no macro")
	}
	return macros
}

// emptyImporter imports every package as an empty one.
type emptyImporter struct{}

func (emptyImporter) Import(path string) (*types.Package, error) {
	pkg := types.NewPackage(path, filepath.Base(path))
	pkg.MarkComplete()
	return pkg, nil
}

// packageConsts type-checks this package's source and returns its integer constants.
func packageConsts(t *testing.T) map[string]int64 {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, f := range pkgs["ckptabi"].Files {
		files = append(files, f)
	}
	// Imports are not needed for the constants: each import is an empty package, and the errors
	// that makes (in code that is not a constant) are ignored.
	conf := types.Config{Importer: emptyImporter{}, Error: func(error) {}}
	pkg, _ := conf.Check("ckptabi", fset, files, nil)
	consts := map[string]int64{}
	for _, name := range pkg.Scope().Names() {
		c, ok := pkg.Scope().Lookup(name).(*types.Const)
		if !ok || c.Val().Kind() != constant.Int {
			continue
		}
		n, exact := constant.Int64Val(c.Val())
		if !exact {
			t.Fatalf("constant %s = %v does not fit int64", name, c.Val())
		}
		consts[name] = n
	}
	return consts
}

// TestHeaderMatchesPackage fails when include/ckpt.h and this package differ: a macro with another
// value, or a name only one side has.
func TestHeaderMatchesPackage(t *testing.T) {
	h, g := headerMacros(t), packageConsts(t)
	for name, v := range h {
		gv, ok := g[name]
		switch {
		case !ok:
			t.Errorf("include/ckpt.h defines %s = %d; package ckptabi has no such constant", name, v)
		case gv != v:
			t.Errorf("%s: include/ckpt.h says %d, package ckptabi %d", name, v, gv)
		}
	}
	for name, v := range g {
		if _, ok := h[name]; !ok {
			t.Errorf("package ckptabi has %s = %d; include/ckpt.h does not define it", name, v)
		}
	}
}

// TestDocTableMatchesPackage checks the values docs/abi.md's first table gives.
func TestDocTableMatchesPackage(t *testing.T) {
	b, err := os.ReadFile(repoFile("docs/abi.md"))
	if err != nil {
		t.Fatal(err)
	}
	g := packageConsts(t)
	row := regexp.MustCompile("(?m)^\\| `(\\w+)` \\| (\\d+)")
	rows := row.FindAllStringSubmatch(string(b), -1)
	if len(rows) < 5 {
		t.Fatalf("docs/abi.md: %d rows of the ABI table found, want the table of names and values", len(rows))
	}
	for _, r := range rows {
		want, _ := strconv.ParseInt(r[2], 10, 64)
		if got, ok := g[r[1]]; !ok || got != want {
			t.Errorf("docs/abi.md: %s = %d; package ckptabi: %d (defined: %v)", r[1], want, got, ok)
		}
	}
}

// TestPythonGuestMatchesPackage checks the ABI numbers the Python test guests use
// (test/guests/guest.py, which cannot include ckpt.h): SYS_CHECKPOINT and CKPT_FREEZE.
func TestPythonGuestMatchesPackage(t *testing.T) {
	b, err := os.ReadFile(repoFile("test/guests/guest.py"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"SYS_CHECKPOINT": SYS_checkpoint, "CKPT_FREEZE": CKPT_FREEZE}
	for name, v := range want {
		m := regexp.MustCompile(`(?m)^` + name + `\s*=\s*(\d+)\s*(#.*)?$`).FindSubmatch(b)
		if m == nil {
			t.Errorf("test/guests/guest.py does not set %s", name)
			continue
		}
		if got, _ := strconv.ParseInt(string(m[1]), 10, 64); got != v {
			t.Errorf("%s: test/guests/guest.py says %d, package ckptabi %d", name, got, v)
		}
	}
}
