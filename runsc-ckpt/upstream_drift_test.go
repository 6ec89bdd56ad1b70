package main

// Tests that fail when code this package mirrors from the pinned gVisor changes upstream
// (docs/upstream-gaps.md, "Copies of upstream internals").

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/upstreamsrc"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/runsc/cmd/alias"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/flag"
)

// upstreamCommands parses runsc's command table (the composite literal in
// runsc/cli/maincli.commands, unexported) from the pinned module's source and returns each
// command's name with its help group; help topics have the group "topic". Names come from each
// command type's Name method, read from source too.
func upstreamCommands(gv string) (map[string]string, error) {
	f, err := upstreamsrc.ParseFile(filepath.Join(gv, "runsc/cli/maincli/maincli.go"))
	if err != nil {
		return nil, err
	}
	fd, err := f.Func("commands")
	if err != nil {
		return nil, err
	}
	imports := f.Imports()
	pkgs := make(map[string][]*upstreamsrc.File)
	// cmdName returns the string the Name method of type name in package path returns, following
	// embedded types (a command that embeds another inherits its Name).
	var cmdName func(path, name string) (string, error)
	cmdName = func(path, name string) (string, error) {
		if !strings.HasPrefix(path, "gvisor.dev/gvisor/") {
			return "", fmt.Errorf("%s.%s: package is not gVisor's", path, name)
		}
		if pkgs[path] == nil {
			files, err := upstreamsrc.ParseDir(filepath.Join(gv, strings.TrimPrefix(path, "gvisor.dev/gvisor/")))
			if err != nil {
				return "", err
			}
			pkgs[path] = files
		}
		v, err := upstreamsrc.MethodStringResult(pkgs[path], name+".Name")
		if !errors.Is(err, upstreamsrc.ErrNoMethod) {
			return v, err
		}
		refs, err := upstreamsrc.EmbeddedTypes(pkgs[path], name)
		if err != nil {
			return "", err
		}
		for _, r := range refs {
			if r.Pkg == "" {
				r.Pkg = path
			}
			if v, err := cmdName(r.Pkg, r.Name); err == nil {
				return v, nil
			}
		}
		return "", fmt.Errorf("%s.%s: no Name method returning a literal", path, name)
	}
	nameOf := func(e ast.Expr) (string, error) {
		// new(pkg.Type)
		call, ok := e.(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			return "", fmt.Errorf("entry %T is not new(pkg.Type)", e)
		}
		sel, ok := call.Args[0].(*ast.SelectorExpr)
		if fn, isIdent := call.Fun.(*ast.Ident); !isIdent || fn.Name != "new" || !ok {
			return "", fmt.Errorf("entry is not new(pkg.Type)")
		}
		return cmdName(imports[sel.X.(*ast.Ident).Name], sel.Sel.Name)
	}
	got := make(map[string]string)
	var walkErr error
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if walkErr != nil {
			return false
		}
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		for _, el := range lit.Elts {
			var name, group string
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				// The command map: new(pkg.Type): someGroup.
				id, ok := kv.Value.(*ast.Ident)
				if !ok {
					walkErr = fmt.Errorf("group %T is not a constant", kv.Value)
					return false
				}
				if group, walkErr = f.StringConst(id.Name); walkErr != nil {
					return false
				}
				name, walkErr = nameOf(kv.Key)
			} else {
				// The help topics: new(pkg.Type).
				group = "topic"
				name, walkErr = nameOf(el)
			}
			if walkErr != nil {
				return false
			}
			got[name] = group
		}
		return false
	})
	if walkErr != nil {
		return nil, fmt.Errorf("maincli.commands: %w", walkErr)
	}
	// maincli merges runsc's aliases (exported) into the table.
	for c, group := range alias.Commands() {
		got[c.Name()] = group
	}
	return got, nil
}

// ourUpstreamCommands returns runsc-ckpt's commands other than its own, with their groups.
func ourUpstreamCommands() map[string]string {
	cmds, topics := commands(registerPolicyFlags(flag.NewFlagSet("test", flag.ContinueOnError)))
	ours := make(map[string]bool)
	for _, c := range ckptCommands() {
		ours[c.Name()] = true
	}
	got := make(map[string]string)
	for c, group := range cmds {
		if !ours[c.Name()] {
			got[c.Name()] = group
		}
	}
	for _, c := range topics {
		got[c.Name()] = "topic"
	}
	return got
}

// TestCommandsMatchUpstream fails when the pinned gVisor's runsc registers a command (or help
// topic) that commands.go does not, drops one it still lists, or moves one to another help group:
// commands.go is a copy of maincli's unexported table.
func TestCommandsMatchUpstream(t *testing.T) {
	gv, err := upstreamsrc.ModuleDir("gvisor.dev/gvisor")
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstreamCommands(gv)
	if err != nil {
		t.Fatal(err)
	}
	if len(up) < 30 {
		t.Fatalf("parsed only %d upstream commands: %v", len(up), up)
	}
	if diff := diffCommands(up, ourUpstreamCommands()); diff != "" {
		t.Errorf("runsc-ckpt/commands.go has drifted from runsc/cli/maincli/maincli.go at the pinned gVisor:\n%s", diff)
	}
}

// TestDiffCommands checks that diffCommands reports additions, removals and moves.
func TestDiffCommands(t *testing.T) {
	up := map[string]string{"run": "", "debug": "debug", "syscalls": "topic"}
	if d := diffCommands(up, map[string]string{"run": "", "debug": "debug", "syscalls": "topic"}); d != "" {
		t.Errorf("equal tables: %q", d)
	}
	d := diffCommands(up, map[string]string{"run": "", "debug": "helpers", "extra": ""})
	for _, want := range []string{`"syscalls" (group "topic") missing`, `"debug" is in group "helpers", upstream "debug"`, `"extra" is not upstream's`} {
		if !strings.Contains(d, want) {
			t.Errorf("diff %q lacks %q", d, want)
		}
	}
}

// diffCommands describes how ours differs from up (name → group), one line per difference.
func diffCommands(up, ours map[string]string) string {
	var lines []string
	for name, g := range up {
		og, ok := ours[name]
		switch {
		case !ok:
			lines = append(lines, fmt.Sprintf("%q (group %q) missing", name, g))
		case og != g:
			lines = append(lines, fmt.Sprintf("%q is in group %q, upstream %q", name, og, g))
		}
	}
	for name := range ours {
		if _, ok := up[name]; !ok {
			lines = append(lines, fmt.Sprintf("%q is not upstream's", name))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestStateFileMatchesUpstream writes a container's state file through runsc's exported
// container.StateFile and checks what restoreStateBundle and the stdio holder assume of it: the
// names "<container>_sandbox:<sandbox>.state" and ".lock" (runsc/container/state_file.go,
// buildPath, unexported), that flock(2) on the lock file excludes runsc's own lock, and that the
// state JSON keeps the bundle in "bundleDir" (container.Container).
func TestStateFileMatchesUpstream(t *testing.T) {
	root := t.TempDir()
	const cid = "c1"
	sf := container.StateFile{RootDir: root, ID: container.FullID{SandboxID: cid, ContainerID: cid}}
	if err := sf.LockForNew(); err != nil {
		t.Fatal(err)
	}
	derived := filepath.Join(root, derivedBundlePrefix+cid+"_1")
	if err := sf.SaveLocked(&container.Container{ID: cid, BundleDir: derived}); err != nil {
		t.Fatal(err)
	}
	base := runscStateBase(root, cid)
	for _, p := range []string{base + ".state", base + ".lock"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("runsc did not write %s: %v", filepath.Base(p), err)
		}
	}
	if m, _ := filepath.Glob(runscStateGlob(root, cid)); len(m) == 0 {
		t.Errorf("%s matches none of runsc's files", runscStateGlob(root, cid))
	}
	// While runsc holds its lock, ours cannot be taken.
	lock, err := os.Open(base + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Errorf("flock on the lock file while runsc holds it: %v, want EWOULDBLOCK", err)
	}
	sf.UnlockOrDie()

	d := &derivedBundle{rootDir: root, cid: cid, dir: derived, userBundle: "/user/bundle"}
	if err := d.restoreStateBundle(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(base + ".state")
	if err != nil {
		t.Fatal(err)
	}
	var c container.Container
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if c.BundleDir != "/user/bundle" || c.ID != cid {
		t.Errorf("after restoreStateBundle runsc reads bundle %q, id %q; want /user/bundle, %s", c.BundleDir, c.ID, cid)
	}
}

// mirroredFuncs are the functions of the pinned gVisor's runsc whose behaviour this package
// copies, with the fingerprint of their code when the copy was checked against them. When a
// gVisor bump changes one, TestMirroredUpstreamFuncs fails: re-read it, bring ours in line, then
// record the new fingerprint.
var mirroredFuncs = []upstreamsrc.Mirror{
	// runsc kill's targeting flags and their checks, and its choice between the container's init
	// and every process (--all): killSelectionFromFlags and killTargets decide the same way for
	// checkpoint signals.
	{File: "runsc/cmd/kill.go", Func: "Kill.SetFlags", Ours: "kill.go killSelectionFromFlags", Fingerprint: "0d8f8f9319733db7"},
	{File: "runsc/cmd/kill.go", Func: "Kill.Execute", Ours: "kill.go killSelectionFromFlags, killTargets", Fingerprint: "49ab152d9c5851c4"},
	// Signal names: optional "SIG" prefix, any case, or a number.
	{File: "runsc/cmd/kill.go", Func: "parseSignal", Ours: "kill.go mayNameCkptSignal, ckptSignalArg", Fingerprint: "fb18f8b6c691c0a0"},
	// The state-file path (behaviour checked by TestStateFileMatchesUpstream as well).
	{File: "runsc/container/state_file.go", Func: "buildPath", Ours: "policy_bundle.go runscStateBase", Fingerprint: "5545b51c9efdeacc"},
}

func TestMirroredUpstreamFuncs(t *testing.T) {
	for _, err := range upstreamsrc.CheckGVisorMirrors(mirroredFuncs) {
		t.Error(err)
	}
}

// TestVersionVariable checks the variable the Makefile sets with -X for runsc's version string
// (go build ignores -X for a variable that does not exist, so a rename upstream would go
// unnoticed).
func TestVersionVariable(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	const flag = "-X gvisor.dev/gvisor/runsc/version.version="
	if !strings.Contains(string(mk), flag) {
		t.Fatalf("the Makefile no longer sets %s...: update this test", flag)
	}
	gv, err := upstreamsrc.ModuleDir("gvisor.dev/gvisor")
	if err != nil {
		t.Fatal(err)
	}
	f, err := upstreamsrc.ParseFile(filepath.Join(gv, "runsc/version/version.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !f.HasVar("version") {
		t.Errorf("runsc/version has no variable version: the Makefile's -X does nothing")
	}
}
