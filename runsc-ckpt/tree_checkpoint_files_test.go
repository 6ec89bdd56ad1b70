package main

import (
	"go/ast"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/upstreamsrc"
)

// TestUpstreamURPCMaxFiles: the helper's exec carries its fds 0-2, its executable and up to
// maxImageFiles image files in one urpc call, which refuses more files than urpc's unexported
// maxFiles (docs/upstream-gaps.md, "Files of one urpc call"). A gVisor bump that lowers it would
// make every container checkpoint into a directory fail; this test fails first.
func TestUpstreamURPCMaxFiles(t *testing.T) {
	gv, err := upstreamsrc.ModuleDir("gvisor.dev/gvisor")
	if err != nil {
		t.Fatal(err)
	}
	f, err := upstreamsrc.ParseFile(filepath.Join(gv, "pkg/urpc/urpc.go"))
	if err != nil {
		t.Fatal(err)
	}
	max := -1
	for _, d := range f.AST.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name != "maxFiles" || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.INT {
					max, _ = strconv.Atoi(lit.Value)
				}
			}
		}
	}
	if max < 0 {
		t.Fatal("pkg/urpc/urpc.go: no integer constant maxFiles (the limit moved: check maxImageFiles)")
	}
	if need := maxImageFiles + 4; need > max {
		t.Errorf("urpc carries at most %d files; the checkpoint helper's exec may pass %d (lower maxImageFiles)", max, need)
	}
}
