package ckpt

// Tests that fail when code this package mirrors changes upstream: in the pinned gVisor, or in
// the Go runtime whose layout the thaw of Go programs relies on (docs/upstream-gaps.md, "Copies
// of upstream internals").

import (
	"fmt"
	"go/ast"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/upstreamsrc"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/devpts"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/proc"
)

// mirroredFuncs are the upstream functions whose behaviour this package copies without being
// able to call them, with the fingerprint of their code (tokens, comments excluded) at the pinned
// gVisor. When a gVisor bump changes one, TestMirroredUpstreamFuncs fails: re-read the upstream
// function, bring ours (named in "ours") in line, then put the new fingerprint here.
var mirroredFuncs = []upstreamsrc.Mirror{
	// Target selection, permission checks and siginfo of the signal-sending syscalls: the
	// SIGCKPT wrappers resolve targets and check permissions in the same order, so that their
	// errnos and the receiver's siginfo are the original syscall's.
	{File: "pkg/sentry/syscalls/linux/sys_signal.go", Func: "Kill", Ours: "sigckpt_kill.go ckptKill, killTargets, killInfo", Fingerprint: "5c03d9c4f2632a9e"},
	{File: "pkg/sentry/syscalls/linux/sys_signal.go", Func: "Tkill", Ours: "sigckpt_kill.go ckptTkill", Fingerprint: "43ed8a20129d63f3"},
	{File: "pkg/sentry/syscalls/linux/sys_signal.go", Func: "Tgkill", Ours: "sigckpt_kill.go ckptTgkill", Fingerprint: "10a30a0262be9786"},
	{File: "pkg/sentry/syscalls/linux/sys_signal.go", Func: "tkillSigInfo", Ours: "sigckpt_kill.go tkillInfo", Fingerprint: "ab5f25004e3788e5"},
	{File: "pkg/sentry/syscalls/linux/sys_signal.go", Func: "RtSigqueueinfo", Ours: "sigckpt_queue.go ckptSigqueueinfo, mayQueueInfo", Fingerprint: "f49ba71a2274ad70"},
	{File: "pkg/sentry/syscalls/linux/sys_signal.go", Func: "RtTgsigqueueinfo", Ours: "sigckpt_queue.go ckptTgsigqueueinfo", Fingerprint: "a9b1adf698a212a2"},
	{File: "pkg/sentry/syscalls/linux/sys_signal.go", Func: "PIDFDSendSignal", Ours: "sigckpt_pidfd.go ckptPidfdSendSignal", Fingerprint: "e9c926367357682a"},
	{File: "pkg/sentry/kernel/pidfd.go", Func: "Task.PIDFDSendSignal", Ours: "sigckpt_pidfd.go ckptPidfdSendSignal", Fingerprint: "2e95ac69f2b0cbb1"},
	// The smaps text parseSmaps reads (VMA line, then "Field: N kB" lines).
	{File: "pkg/sentry/mm/procfs.go", Func: "MemoryManager.ReadSmapsDataInto", Ours: "freeze_capture_mem.go parseSmaps", Fingerprint: "f2c4a3f3f899f883"},
	{File: "pkg/sentry/mm/procfs.go", Func: "MemoryManager.vmaSmapsEntryIntoLocked", Ours: "freeze_capture_mem.go parseSmaps", Fingerprint: "1e476b12e2fb33db"},
	// The emulated [vsyscall] entry listVMAs leaves out.
	{File: "pkg/sentry/mm/procfs.go", Func: "MemoryManager.ReadMapsDataInto", Ours: "freeze_capture_mem.go listVMAs; obj_dontfork.go dontForkRanges (walks the VMA tree in the callback: mappingMu must be held there)", Fingerprint: "e7c1c8274f902409"},
	// The rt_sigframe tail thaw writes for rt_sigreturn to load (ucontext, fpstate, uc_flags).
	{File: "pkg/sentry/arch/signal_amd64.go", Func: "Context64.SignalRestore", Ours: "thaw_regs.go", Fingerprint: "2eb266faafd65bc5"},
}

func TestMirroredUpstreamFuncs(t *testing.T) {
	for _, err := range upstreamsrc.CheckGVisorMirrors(mirroredFuncs) {
		t.Error(err)
	}
}

// TestMirroredUpstreamNames checks the names of gVisor objects this package recognises by name.
func TestMirroredUpstreamNames(t *testing.T) {
	if procFSName != proc.Name || devptsFSName != devpts.Name {
		t.Errorf("filesystem names %q, %q; gVisor's are %q, %q", procFSName, devptsFSName, proc.Name, devpts.Name)
	}
	gv := gvisorDir(t)
	mount, err := upstreamsrc.ParseFile(filepath.Join(gv, "pkg/sentry/vfs/mount.go"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := mount.StringConst("nsfsName"); err != nil || v != nsFSName {
		t.Errorf("vfs nsfsName = %q, %v; ours %q", v, err, nsFSName)
	}
	// Special VMA names: where upstream names each mapping.
	for _, c := range []struct{ file, name string }{
		{"pkg/sentry/mm/procfs.go", nameVsyscall},
		{"pkg/sentry/loader/vdso.go", nameVvar},
		{"pkg/sentry/loader/vdso.go", nameVvar},
		{"pkg/sentry/platform/systrap/usertrap/usertrap_amd64.go", nameUsertrap},
		{"pkg/sentry/platform/systrap/usertrap/usertrap_amd64.go", nameUsertrap},
	} {
		f, err := upstreamsrc.ParseFile(filepath.Join(gv, c.file))
		if err != nil {
			t.Error(err)
			continue
		}
		if !f.HasStringLit(c.name) {
			t.Errorf("%s no longer names a mapping %q", c.file, c.name)
		}
	}
}

// TestGoProcIDOffset computes, from the Go runtime source of the toolchain that builds the Go
// guests (runtime/runtime2.go), the offsets of g.m and m.procid that goProcID assumes (goGM,
// goProcIDOffsets). It fails when a Go release moves them.
func TestGoProcIDOffset(t *testing.T) {
	root, err := upstreamsrc.GoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := upstreamsrc.ParseFile(filepath.Join(root, "src/runtime/runtime2.go"))
	if err != nil {
		t.Fatal(err)
	}
	l := goLayout{structs: make(map[string]*ast.StructType)}
	ast.Inspect(f.AST, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok {
			if st, ok := ts.Type.(*ast.StructType); ok {
				l.structs[ts.Name.Name] = st
			}
		}
		return true
	})
	gm, err := l.offsetOf("g", "m")
	if err != nil {
		t.Fatal(err)
	}
	procid, err := l.offsetOf("m", "procid")
	if err != nil {
		t.Fatal(err)
	}
	if gm != goGM {
		t.Errorf("g.m is at %d in this Go's runtime, goGM is %d", gm, goGM)
	}
	if !slices.Contains(goProcIDOffsets, procid) {
		t.Errorf("m.procid is at %d in this Go's runtime, not one of goProcIDOffsets %v", procid, goProcIDOffsets)
	}
}

// goLayout computes amd64 field offsets of the runtime's structs from their source. It knows
// only the types that occur before the fields asked for and fails on any other.
type goLayout struct {
	structs map[string]*ast.StructType
}

// sizeAlign returns the size and alignment of type expression e.
func (l goLayout) sizeAlign(e ast.Expr) (uint64, uint64, error) {
	switch t := e.(type) {
	case *ast.StarExpr:
		return 8, 8, nil
	case *ast.SelectorExpr:
		if x, ok := t.X.(*ast.Ident); ok && x.Name == "unsafe" && t.Sel.Name == "Pointer" {
			return 8, 8, nil
		}
	case *ast.Ident:
		switch t.Name {
		case "uintptr", "guintptr", "muintptr", "puintptr", "uint64", "int64", "int":
			return 8, 8, nil
		case "uint32", "int32":
			return 4, 4, nil
		}
		if st, ok := l.structs[t.Name]; ok {
			return l.structSize(st)
		}
	}
	return 0, 0, fmt.Errorf("type %T %v not known to the layout", e, e)
}

// structSize returns the size and alignment of st.
func (l goLayout) structSize(st *ast.StructType) (uint64, uint64, error) {
	var off, align uint64 = 0, 1
	for _, fld := range st.Fields.List {
		size, a, err := l.sizeAlign(fld.Type)
		if err != nil {
			return 0, 0, err
		}
		n := max(len(fld.Names), 1)
		for range n {
			off = (off + a - 1) / a * a
			off += size
		}
		align = max(align, a)
	}
	return (off + align - 1) / align * align, align, nil
}

// offsetOf returns the offset of field in struct typ.
func (l goLayout) offsetOf(typ, field string) (uint64, error) {
	st, ok := l.structs[typ]
	if !ok {
		return 0, fmt.Errorf("runtime has no struct %s", typ)
	}
	var off uint64
	for _, fld := range st.Fields.List {
		size, a, err := l.sizeAlign(fld.Type)
		if err == nil {
			off = (off + a - 1) / a * a
		}
		for _, n := range fld.Names {
			if n.Name == field {
				if err != nil {
					return 0, err
				}
				return off, nil
			}
		}
		if err != nil {
			return 0, fmt.Errorf("%s.%s: %w", typ, field, err)
		}
		off += size * uint64(max(len(fld.Names), 1))
	}
	return 0, fmt.Errorf("runtime struct %s has no field %s", typ, field)
}

// TestSystrapReadsGOMAXPROCSOnce checks what pendingImage.write's extra P relies on: systrap reads
// GOMAXPROCS only in New, when the platform is made, so a P added for the duration of an image's
// write does not change how many guest threads may run at once. It fails when a gVisor bump reads
// it anywhere else in the platform.
func TestSystrapReadsGOMAXPROCSOnce(t *testing.T) {
	files, err := upstreamsrc.ParseDir(filepath.Join(gvisorDir(t), "pkg/sentry/platform/systrap"))
	if err != nil {
		t.Fatal(err)
	}
	inNew := 0
	for _, f := range files {
		for _, d := range f.AST.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			ast.Inspect(fd, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "GOMAXPROCS" {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "runtime" {
					return true
				}
				if fd.Recv == nil && fd.Name.Name == "New" && filepath.Base(f.Path) == "systrap.go" {
					inNew++
				} else {
					t.Errorf("%s: %s reads runtime.GOMAXPROCS: an extra P during an image's write may now change the guest's CPU model (freeze_pending.go)", f.Fset.Position(sel.Pos()), fd.Name.Name)
				}
				return true
			})
		}
	}
	if inNew == 0 {
		t.Errorf("systrap's New no longer reads runtime.GOMAXPROCS: re-check how it sizes its stub threads before keeping the writer's extra P (freeze_pending.go)")
	}
}

// gvisorDir returns the pinned gVisor module's source directory.
func gvisorDir(t *testing.T) string {
	t.Helper()
	gv, err := upstreamsrc.ModuleDir("gvisor.dev/gvisor")
	if err != nil {
		t.Fatal(err)
	}
	return gv
}
