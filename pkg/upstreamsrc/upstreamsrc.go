// Package upstreamsrc reads the source of a pinned dependency (gVisor, or the Go toolchain's own
// runtime) so that tests can notice when code that runsc-ckpt mirrors changes upstream. Each
// mirror is listed in docs/upstream-gaps.md ("Copies of upstream internals") with the test that
// uses this package to watch it.
//
// Two kinds of check are offered: structural reads (a function's composite literal, a method's
// returned string, a constant's value) for tests that compare upstream's data with ours, and a
// fingerprint of one function's tokens for code whose behaviour we copy but cannot call. A
// fingerprint ignores comments and formatting, so it changes only when the code changes.
//
// The package runs the go command (`go list -m`, `go env GOROOT`), so its users are tests run by
// `go test` inside the module. It imports nothing of gVisor.
package upstreamsrc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ModuleDir returns the directory of module path (e.g. "gvisor.dev/gvisor") at the version the
// current module requires, from `go list -m` (the module cache; downloaded if missing).
func ModuleDir(path string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w%s", path, err, stderrOf(err))
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("go list -m %s: module not downloaded (run go mod download)", path)
	}
	return dir, nil
}

// GoRoot returns the root of the Go toolchain that `go` on PATH runs (`go env GOROOT`).
func GoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOROOT: %w%s", err, stderrOf(err))
	}
	return strings.TrimSpace(string(out)), nil
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// File is one parsed Go source file.
type File struct {
	Path string
	Fset *token.FileSet
	AST  *ast.File
	src  []byte
}

// ParseFile parses the Go file at path, with comments.
func ParseFile(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	return &File{Path: path, Fset: fset, AST: f, src: src}, nil
}

// ParseDir parses every non-test Go file of the directory dir.
func ParseDir(dir string) ([]*File, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var files []*File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := ParseFile(n)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no Go files", dir)
	}
	return files, nil
}

// Func returns the declaration of function name in f. A method is named "Recv.Method" (the
// receiver's type name without '*').
func (f *File) Func(name string) (*ast.FuncDecl, error) {
	for _, d := range f.AST.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if ok && funcName(fd) == name {
			return fd, nil
		}
	}
	return nil, fmt.Errorf("%s: no function %s", f.Path, name)
}

// funcName is fd's name as Func takes it.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	return recvTypeName(fd.Recv.List[0].Type) + "." + fd.Name.Name
}

// recvTypeName is the type name of a receiver type expression (*T, T, T[P]).
func recvTypeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recvTypeName(t.X)
	case *ast.IndexExpr:
		return recvTypeName(t.X)
	case *ast.IndexListExpr:
		return recvTypeName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return ""
}

// Fingerprint returns a short hash of the tokens of function name in f: comments, spacing and
// line breaks do not count, so it changes only when the code does.
func (f *File) Fingerprint(name string) (string, error) {
	fd, err := f.Func(name)
	if err != nil {
		return "", err
	}
	start := f.Fset.Position(fd.Pos()).Offset
	end := f.Fset.Position(fd.End()).Offset
	return fingerprint(f.src[start:end]), nil
}

// fingerprint hashes the token stream of src.
func fingerprint(src []byte) string {
	fset := token.NewFileSet()
	var s scanner.Scanner
	s.Init(fset.AddFile("", -1, len(src)), src, nil, 0) // Mode 0: comments are skipped.
	var b bytes.Buffer
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.SEMICOLON && lit == "\n" {
			continue // An inserted semicolon: a line break.
		}
		b.WriteString(tok.String())
		if lit != "" {
			b.WriteByte(' ')
			b.WriteString(lit)
		}
		b.WriteByte('\n')
	}
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:8])
}

// StringConst returns the value of the string constant name declared in f.
func (f *File) StringConst(name string) (string, error) {
	for _, d := range f.AST.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name != name || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					return strconv.Unquote(lit.Value)
				}
				return "", fmt.Errorf("%s: constant %s is not a string literal", f.Path, name)
			}
		}
	}
	return "", fmt.Errorf("%s: no constant %s", f.Path, name)
}

// HasVar reports whether f declares a package-level variable name.
func (f *File) HasVar(name string) bool {
	for _, d := range f.AST.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, s := range gd.Specs {
			for _, n := range s.(*ast.ValueSpec).Names {
				if n.Name == name {
					return true
				}
			}
		}
	}
	return false
}

// HasStringLit reports whether the string literal s occurs anywhere in f's code.
func (f *File) HasStringLit(s string) bool {
	found := false
	ast.Inspect(f.AST, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if v, err := strconv.Unquote(lit.Value); err == nil && v == s {
				found = true
			}
		}
		return !found
	})
	return found
}

// Imports maps f's import names (the explicit name, else the last path element) to paths.
func (f *File) Imports() map[string]string {
	m := make(map[string]string)
	for _, im := range f.AST.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		m[name] = p
	}
	return m
}

// ErrNoMethod is MethodStringResult's error when no file declares the method.
var ErrNoMethod = errors.New("no such method")

// MethodStringResult returns the string literal that method Recv.Name of one of files returns
// (e.g. a subcommand's Name method: `func (*Run) Name() string { return "run" }`).
func MethodStringResult(files []*File, method string) (string, error) {
	for _, f := range files {
		fd, err := f.Func(method)
		if err != nil {
			continue
		}
		if fd.Body == nil || len(fd.Body.List) != 1 {
			return "", fmt.Errorf("%s: %s is not a single return statement", f.Path, method)
		}
		ret, ok := fd.Body.List[0].(*ast.ReturnStmt)
		if !ok || len(ret.Results) != 1 {
			return "", fmt.Errorf("%s: %s is not a single return statement", f.Path, method)
		}
		lit, ok := ret.Results[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", fmt.Errorf("%s: %s does not return a string literal", f.Path, method)
		}
		return strconv.Unquote(lit.Value)
	}
	return "", fmt.Errorf("%s: %w", method, ErrNoMethod)
}

// TypeRef names a type: its package's import path ("" for the package being read) and name.
type TypeRef struct {
	Pkg, Name string
}

// EmbeddedTypes returns the types embedded in struct type name, declared in one of files, with
// their packages resolved through the declaring file's imports.
func EmbeddedTypes(files []*File, name string) ([]TypeRef, error) {
	for _, f := range files {
		for _, d := range f.AST.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, sp := range gd.Specs {
				ts := sp.(*ast.TypeSpec)
				if ts.Name.Name != name {
					continue
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return nil, fmt.Errorf("%s: type %s is not a struct", f.Path, name)
				}
				var refs []TypeRef
				for _, fld := range st.Fields.List {
					if len(fld.Names) != 0 {
						continue
					}
					e := fld.Type
					if star, ok := e.(*ast.StarExpr); ok {
						e = star.X
					}
					switch t := e.(type) {
					case *ast.Ident:
						refs = append(refs, TypeRef{Name: t.Name})
					case *ast.SelectorExpr:
						refs = append(refs, TypeRef{Pkg: f.Imports()[t.X.(*ast.Ident).Name], Name: t.Sel.Name})
					}
				}
				return refs, nil
			}
		}
	}
	return nil, fmt.Errorf("no type %s", name)
}

// Mirror is one upstream function whose behaviour runsc-ckpt copies without being able to call
// it, with the fingerprint of its code when the copy was last checked against it.
type Mirror struct {
	File, Func  string // The function (Func's form), in File relative to the module root.
	Ours        string // Where our copy lives, for the error message.
	Fingerprint string
}

// CheckGVisorMirrors is CheckMirrors for functions of the gVisor module this build uses: one error
// per changed or missing function, or the one error of finding the module.
func CheckGVisorMirrors(ms []Mirror) []error {
	gv, err := ModuleDir("gvisor.dev/gvisor")
	if err != nil {
		return []error{err}
	}
	return CheckMirrors(gv, ms)
}

// CheckMirrors fingerprints each mirrored function under root (a module directory) and returns
// one error per function that is missing or whose fingerprint is not the recorded one.
func CheckMirrors(root string, ms []Mirror) []error {
	var errs []error
	files := make(map[string]*File)
	for _, m := range ms {
		f := files[m.File]
		if f == nil {
			var err error
			if f, err = ParseFile(filepath.Join(root, m.File)); err != nil {
				errs = append(errs, fmt.Errorf("%s (mirrored by %s): %w", m.File, m.Ours, err))
				continue
			}
			files[m.File] = f
		}
		got, err := f.Fingerprint(m.Func)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (mirrored by %s): %w", m.File, m.Ours, err))
			continue
		}
		if got != m.Fingerprint {
			errs = append(errs, fmt.Errorf("%s %s changed upstream (fingerprint %s, recorded %s): re-check %s against it, then record the new fingerprint", m.File, m.Func, got, m.Fingerprint, m.Ours))
		}
	}
	return errs
}
