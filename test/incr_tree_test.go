package test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// dirDataBytes returns the bytes the images of the checkpoint in dir take on disk (st_blocks:
// holes cost nothing) and their number.
func dirDataBytes(t *testing.T, dir string, m *treefmt.Manifest) int64 {
	t.Helper()
	var n int64
	for _, p := range m.Processes {
		if p.Image == "" {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, p.Image))
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Sys().(*syscall.Stat_t).Blocks * 512
	}
	return n
}

// waitLogLines waits until the log at path holds every line of want.
func waitLogLines(t *testing.T, path string, want ...string) {
	t.Helper()
	read := func() string { b, _ := os.ReadFile(path); return string(b) }
	end := time.Now().Add(60 * time.Second)
	for {
		log := read()
		missing := ""
		for _, w := range want {
			if !strings.Contains(log, w+"\n") {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("log %s never held %q:\n%s", path, missing, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// roleLines returns "R WHAT ok" for the roles 0 to n-1 of tree_incr (the fourth, role 3, is born
// at step 1).
func roleLines(n int, what string) []string {
	var l []string
	for r := 0; r < n; r++ {
		l = append(l, fmt.Sprintf("%d %s ok", r, what))
	}
	return l
}

// TestIncrementalTreeOCI: `checkpoint --format=elf --parent-path` (the flag engines pass for CRIU
// pre-dumps). A container of three processes with 4 MiB of non-zero memory each
// (test/guests/tree_incr.c) is checkpointed with --leave-running into P; each process changes 4
// pages and a fourth process is born; a checkpoint into C with --parent-path ../P (relative to C,
// as engines pass it) stores only what changed: the images of the three take less than a tenth of
// P's bytes on disk, each incremental against the same pid's image in P; the newborn's is
// complete. Another step and a checkpoint into D against C
// make a chain of three directories. Restores from D and from C (their parents on disk) bring back
// the same pids, and every process finds its memory exactly as its steps left it (it rebuilds the
// expected contents and compares every page). With P moved away, with a byte of a P image's notes
// changed, or with P's manifest changed, a restore from C fails before any sandbox runs, naming a
// stale parent, and leaves no container. `squash D S` writes a complete checkpoint that restores
// with P gone; `inspect --chain D` lists the three directories and each process's chain.
func TestIncrementalTreeOCI(t *testing.T) {
	guest := h.BuildC(t, "tree_incr")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startGuestTree(t, p, guest, "incr.log")
		log := filepath.Join(a.Dir, "incr.log")
		base := h.NewDir(t)
		dirP, dirC, dirD := filepath.Join(base, "P"), filepath.Join(base, "C"), filepath.Join(base, "D")

		// The chain mixes digests: P and D SHA-256, C CRC-32C (the default); each manifest's
		// digests are verified with their own algorithm, the parents' too.
		a.MustRun(t, "checkpoint", "--format=elf", "--leave-running", "--digest=sha256", "--image-path", dirP, a.ID)
		mP, err := treefmt.VerifyDir(dirP)
		if err != nil {
			t.Fatal(err)
		}
		if algs := mP.DigestAlgs(); mP.Parent != nil || mP.Version != treefmt.Version || len(algs) != 1 || algs[0] != treefmt.DigestSHA256 {
			t.Errorf("a complete SHA-256 checkpoint's manifest: version %d, parent %+v, digests %v", mP.Version, mP.Parent, algs)
		}
		a.Kill(t, "USR1")
		waitLogLines(t, log, append(roleLines(3, "step 1"), "3 born ok")...)
		a.MustRun(t, "checkpoint", "--format=elf", "--leave-running", "--image-path", dirC, "--parent-path", "../P", a.ID)
		mC, err := treefmt.VerifyDir(dirC)
		if err != nil {
			t.Fatal(err)
		}
		if mC.Version != treefmt.VersionDigest || mC.Parent == nil || mC.Parent.Path != "../P" || mC.Parent.HostPath != dirP {
			t.Fatalf("C's manifest: version %d, parent %+v; want version %d (a parent and CRC-32C digests), parent ../P at %s", mC.Version, mC.Parent, treefmt.VersionDigest, dirP)
		}
		if algs := mC.DigestAlgs(); len(algs) != 1 || algs[0] != treefmt.DigestCRC32C {
			t.Errorf("C's digests: %v, want CRC-32C (incremental images rewritten with the checkpoint's algorithm)", algs)
		}
		if len(mC.Processes) != 4 {
			t.Fatalf("C holds %d processes, want 4", len(mC.Processes))
		}
		var old treefmt.Manifest // C's processes that P has.
		for _, pr := range mC.Processes {
			img := decodeImage(t, filepath.Join(dirC, pr.Image))
			pp := mP.Process(pr.PID)
			if pp == nil {
				// Born after P: a complete image.
				if pr.ParentImage != "" || img.Parent != nil {
					t.Errorf("pid %d, new since P: parent image %q, parent reference %+v; want a complete image", pr.PID, pr.ParentImage, img.Parent)
				}
				continue
			}
			old.Processes = append(old.Processes, pr)
			if pr.ParentImage != pp.Image {
				t.Errorf("pid %d: parent image %q, want P's image of the same pid %q", pr.PID, pr.ParentImage, pp.Image)
			}
			if img.Parent == nil || img.Parent.Image.Path != filepath.Join(dirP, pr.ParentImage) {
				t.Errorf("pid %d: image's parent reference %+v, want %s", pr.PID, img.Parent, filepath.Join(dirP, pr.ParentImage))
			}
		}
		if len(old.Processes) != 3 {
			t.Fatalf("C has %d processes P has, want 3", len(old.Processes))
		}
		fullBytes, deltaBytes := dirDataBytes(t, dirP, mP), dirDataBytes(t, dirC, &old)
		t.Logf("P's images: %d bytes on disk, C's of the same pids: %d (%.2f %%)", fullBytes, deltaBytes, 100*float64(deltaBytes)/float64(fullBytes))
		if fullBytes < 3*4<<20 || deltaBytes*10 > fullBytes {
			t.Errorf("P's images take %d bytes, C's of the same pids %d: want P above 12 MiB and C under a tenth of it", fullBytes, deltaBytes)
		}
		out := a.MustRun(t, "inspect", "--chain", filepath.Join(dirC, mC.Processes[0].Image)).Stdout
		if !strings.Contains(out, "chain:\t2 images") {
			t.Errorf("inspect --chain of C's first image:\n%s", out)
		}

		// Parents that cannot be: refused before anything is frozen, the container runs on.
		for _, tc := range []struct{ parent, want string }{
			{h.NewDir(t), "not an ELF checkpoint directory"},
			{".", "is the image directory itself"},
		} {
			r := a.Run(t, "checkpoint", "--format=elf", "--leave-running", "--image-path", dirC, "--parent-path", tc.parent, a.ID)
			if r.ExitCode == 0 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("checkpoint --parent-path %s: exit %d, stderr %q; want a failure saying %q", tc.parent, r.ExitCode, lastLines(r.Stderr, 3), tc.want)
			}
		}
		if m, err := treefmt.VerifyDir(dirC); err != nil || m.Parent == nil {
			t.Errorf("C after the refused checkpoints: %v", err)
		}
		a.Kill(t, "USR1")
		waitLogLines(t, log, roleLines(4, "step 2")...)
		a.MustRun(t, "checkpoint", "--format=elf", "--digest=sha256", "--image-path", dirD, "--parent-path", dirC, a.ID)
		a.Wait(t)
		a.Delete(t, false)
		mD, err := treefmt.VerifyDir(dirD)
		if err != nil {
			t.Fatal(err)
		}
		if mD.Parent == nil || mD.Parent.HostPath != dirC {
			t.Fatalf("D's parent: %+v, want %s", mD.Parent, dirC)
		}
		if algs := mD.DigestAlgs(); len(algs) != 1 || algs[0] != treefmt.DigestSHA256 || mD.Version != treefmt.VersionParent {
			t.Errorf("D's digests %v, version %d; want SHA-256 and version %d", algs, mD.Version, treefmt.VersionParent)
		}
		out = a.MustRun(t, "inspect", "--chain", dirD).Stdout
		if !strings.Contains(out, "checkpoint chain:\t3 directories") || strings.Count(out, "chain:\t3 images") != 3 || strings.Count(out, "chain:\t2 images") != 1 {
			t.Errorf("inspect --chain of D: want 3 directories, three chains of 3 images and one of 2 (the process born after P):\n%s", out)
		}

		restore := func(t *testing.T, dir string) *harness.Container {
			b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
			b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
			return b
		}
		// A chain of three: D's pages, C's, P's.
		b := restore(t, dirD)
		checkRestored(t, b, mD)
		b.Kill(t, "USR2")
		waitLogLines(t, log, roleLines(4, "verify 2")...)
		// Step 2 changed every fifth page: each region resolves to more ranges than the thaw maps
		// one by one, so it mapped the region from P's image and patched the changed pages.
		if n := countInLogs(t, b.LogDir, "and patched"); n < 4 {
			t.Errorf("the sandbox log of the restore from D says %d times that a delta mapping was mapped from a parent and patched, want at least 4 (one per process)", n)
		}
		b.Delete(t, true)
		// A chain of two, restored with every digest verified (the parents' too).
		b = h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--verify-digests", "--image-path", dirC, "--bundle", a.Bundle, "--detach", b.ID)
		checkRestored(t, b, mC)
		b.Kill(t, "USR2")
		waitLogLines(t, log, roleLines(4, "verify 1")...)
		b.Delete(t, true)
		if strings.Contains(readLog(log), " seen") || strings.Contains(readLog(log), "bad page") {
			t.Errorf("a process found its memory changed:\n%s", readLog(log))
		}

		// Stale parents: each refused before a sandbox runs, nothing left behind.
		refused := func(t *testing.T, dir, why string) {
			t.Helper()
			b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
			r := b.Run(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
			if r.ExitCode == 0 || !strings.Contains(r.Stderr, "stale parent checkpoint") {
				t.Errorf("restore of %s with %s: exit %d, stderr %q; want a failure naming a stale parent", dir, why, r.ExitCode, lastLines(r.Stderr, 3))
			}
			if cs := b.Containers(t); len(cs) != 0 {
				t.Errorf("containers left behind: %v", cs)
			}
		}
		moved := dirP + ".moved"
		if err := os.Rename(dirP, moved); err != nil {
			t.Fatal(err)
		}
		refused(t, dirC, "P moved away")
		refused(t, dirD, "P (its grand-parent) moved away")
		// D squashed (made while P was still there) restores with P gone.
		if err := os.Rename(moved, dirP); err != nil {
			t.Fatal(err)
		}
		dirS := filepath.Join(base, "S")
		a.MustRun(t, "squash", dirD, dirS)
		if err := os.Rename(dirP, moved); err != nil {
			t.Fatal(err)
		}
		mS, err := treefmt.VerifyDir(dirS)
		if err != nil {
			t.Fatal(err)
		}
		if mS.Parent != nil || mS.Version != treefmt.Version {
			t.Errorf("squashed manifest: version %d, parent %+v; want version %d and no parent", mS.Version, mS.Parent, treefmt.Version)
		}
		b = restore(t, dirS)
		checkRestored(t, b, mS)
		before := strings.Count(readLog(log), "verify 2 ok")
		b.Kill(t, "USR2")
		waitFor(t, 60*time.Second, func() bool { return strings.Count(readLog(log), "verify 2 ok") >= before+4 })
		b.Delete(t, true)
		if err := os.Rename(moved, dirP); err != nil {
			t.Fatal(err)
		}
		// A byte of the notes of P's image of the init: its notes digest no longer matches.
		img := filepath.Join(dirP, mP.Process(1).Image)
		restoreFile := corruptNotes(t, img)
		refused(t, dirC, "a P image's notes changed")
		restoreFile()
		// P's manifest changed (say, P was written again): C's record of it no longer matches.
		mf := filepath.Join(dirP, treefmt.ManifestName)
		orig, err := os.ReadFile(mf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(mf, append(append([]byte{}, orig...), '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
		refused(t, dirC, "P's manifest changed")
	})
}

// readLog returns the file at path, or "".
func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// corruptNotes flips one byte in the middle of the PT_NOTE segment of the image at path and
// returns a function that puts it back.
func corruptNotes(t *testing.T, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ph := make([]byte, 56)
	if _, err := f.ReadAt(ph, 64); err != nil { // The first program header: the PT_NOTE.
		t.Fatal(err)
	}
	if typ := binary.LittleEndian.Uint32(ph); typ != 4 {
		t.Fatalf("%s: first program header has type %d, not PT_NOTE", path, typ)
	}
	at := int64(binary.LittleEndian.Uint64(ph[8:]) + binary.LittleEndian.Uint64(ph[32:])/2)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{b[0] ^ 0xff}, at); err != nil {
		t.Fatal(err)
	}
	return func() {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, at); err != nil {
			t.Fatal(err)
		}
	}
}

// rootfsBundle rewrites c's config.json for a root filesystem of its own: a directory holding
// only busybox and the guest at their host paths and c's working directory; mounts and everything
// else stay. Returns the rootfs directory (its files are the container's, --overlay2=none).
func rootfsBundle(t *testing.T, c *harness.Container, guest string) string {
	t.Helper()
	root := filepath.Join(h.NewDir(t), "rootfs")
	for _, f := range []string{busybox, guest} {
		dst := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", f, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp %s: %v\n%s", f, err, out)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, c.Spec.Process.Cwd), 0o777); err != nil {
		t.Fatal(err)
	}
	c.Spec.Root.Path = root
	b, err := json.MarshalIndent(c.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestIncrementalTreeRootfsOCI: the same for a container with a root filesystem of its own, the
// engines' case, with the flags Podman passes: --pre-dump (P; the container keeps running), then
// --parent-path ../P (C; the container stops). Its images name their parent by /.runsc-ckpt-restore/parents/ID (they cannot name
// a host path the container does not see), and the restore bind-mounts the parent there. The
// chain is then copied elsewhere (new file times, as an engine's export and import make) and the
// originals moved away: the restore from the copy finds the parent by its relative path, the
// sentry accepts the copied parent images (same size, notes digest and freeze time), and every
// process finds its memory as it left it.
func TestIncrementalTreeRootfsOCI(t *testing.T) {
	guest := h.BuildC(t, "tree_incr")
	needBusybox(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{guest, "incr.log"}})
		root := rootfsBundle(t, a, guest)
		a.RunDetached(t)
		a.WaitForOutput(t, "ready")
		log := filepath.Join(root, a.Spec.Process.Cwd, "incr.log")
		base := h.NewDir(t)
		dirP, dirC := filepath.Join(base, "P"), filepath.Join(base, "C")
		// The flags Podman passes (--pre-checkpoint, then --with-previous).
		a.MustRun(t, "checkpoint", "--format=elf", "--pre-dump", "--image-path", dirP, a.ID)
		if st := a.State(t); st.Status != "running" {
			t.Fatalf("after --pre-dump the container is %q, want running", st.Status)
		}
		a.Kill(t, "USR1")
		waitLogLines(t, log, append(roleLines(3, "step 1"), "3 born ok")...)
		a.MustRun(t, "checkpoint", "--format=elf", "--image-path", dirC, "--parent-path", "../P", a.ID)
		a.Wait(t)
		a.Delete(t, false)
		mC, err := treefmt.VerifyDir(dirC)
		if err != nil {
			t.Fatal(err)
		}
		digest, err := treefmt.ManifestDigest(dirP)
		if err != nil {
			t.Fatal(err)
		}
		if mC.Parent == nil || mC.Parent.SandboxPath != treefmt.ParentSandboxPath(digest) {
			t.Fatalf("C's parent: %+v, want sandbox path %s", mC.Parent, treefmt.ParentSandboxPath(digest))
		}
		if n := len(mC.Processes); n != 4 {
			t.Fatalf("C holds %d processes, want 4", n)
		}
		for _, pr := range mC.Processes {
			img := decodeImage(t, filepath.Join(dirC, pr.Image))
			if pr.ParentImage == "" {
				continue // The process born after P.
			}
			if want := treefmt.ParentSandboxPath(digest) + "/" + pr.ParentImage; img.Parent == nil || img.Parent.Image.Path != want {
				t.Errorf("pid %d: image's parent reference %+v, want %s", pr.PID, img.Parent, want)
			}
		}

		copied := filepath.Join(h.NewDir(t), "copy")
		if out, err := exec.Command("cp", "-r", base, copied).CombinedOutput(); err != nil {
			t.Fatalf("cp -r: %v\n%s", err, out)
		}
		if err := os.Rename(base, base+".away"); err != nil {
			t.Fatal(err)
		}
		// The images name /.runsc-ckpt-restore/parents/ID; inspect maps it to the copy.
		out := a.MustRun(t, "inspect", "--chain", filepath.Join(copied, "C")).Stdout
		if !strings.Contains(out, "checkpoint chain:\t2 directories") || strings.Count(out, "chain:\t2 images") != 3 || strings.Count(out, "chain:\t1 images") != 1 {
			t.Errorf("inspect --chain of the copied C: want 2 directories, three chains of 2 images and one of 1:\n%s", out)
		}
		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", filepath.Join(copied, "C"), "--bundle", a.Bundle, "--detach", b.ID)
		checkRestored(t, b, mC)
		b.Kill(t, "USR2")
		waitLogLines(t, log, roleLines(4, "verify 1")...)
		b.Delete(t, true)
	})
}

// countInLogs counts the lines of the files in dir that contain s.
func countInLogs(t *testing.T, dir, s string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
			n += strings.Count(string(b), s)
		}
	}
	return n
}
