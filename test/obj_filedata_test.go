package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// objFileDataWant are the checks test/guests/obj_filedata.c prints after a thaw.
var objFileDataWant = []string{
	"unl_path=1", "unl_data=1", "unl_stat=1", "unl_offset=1", "unl_dup=1", "unl_flags=1", "unl_shared=1",
	"memfd_name=1", "memfd_data=1", "memfd_size=1", "memfd_seals=1", "memfd_seal_enforced=1", "memfd_cloexec=1",
	"memfd_map_to_fd=1", "memfd_fd_to_map=1", "plain_seals=1",
	"maponly_data=1", "maponly_shared=1", "anon_data=1", "anon_shared=1", "fails=0",
}

// objFileDataWriteOnly are the checks of the write-only unlinked file (fd 33).
var objFileDataWriteOnly = []string{"wo_stat=1", "wo_data=1", "wo_flags=1"}

// TestObjFileData freezes a guest holding unlinked files (sparse, two descriptions, a dup, and a
// write-only one), memfds (sealed and not, one mapped shared, one only mapped) and shared anonymous
// memory, and thaws it in a new sandbox and in the same sandbox: contents, holes, sizes, modes,
// offsets, status and fd flags, seals and the sharing between fds and mappings all come back. The
// write-only file lives on the sandbox's overlay (tmpfs); on a host directory (gofer) its freeze is
// refused with EOPNOTSUPP (docs/notes-thaw.md).
func TestObjFileData(t *testing.T) {
	guest := h.BuildC(t, "obj_filedata")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img := filepath.Join(dir, "filedata.ckpt")
		frozenGuest(t, p, "r=0 errno=0", guest, img, dir)
		check := func(t *testing.T, r *harness.Result, extra ...string) {
			t.Helper()
			r.WantExit(t, 0)
			for _, w := range append(extra, objFileDataWant...) {
				if !strings.Contains(r.Stdout, w+"\n") {
					t.Errorf("want %q:\n%s", w, r)
				}
			}
		}
		t.Run("new-sandbox", func(t *testing.T) {
			r := checkpt(t, p, "-r", img)
			check(t, r)
			// The image shows the objects and their shared mappings.
			ins := h.Do(t, harness.Opts{Platform: p, Persist: true}, h.Bin, "inspect", img)
			ins.WantExit(t, 0)
			for _, w := range []string{`memfd "objmemfd"`, `memfd "plain"`, `memfd "maponly"`, "shared anonymous memory", "unlinked file \"" + dir + "/unl\"", "object",
				// Holes stay holes: of 1 MiB + 5 bytes, the first page and the last 5 bytes are stored.
				"mode 0640, size 1048581, 4101 bytes in 2 runs"} {
				if !strings.Contains(ins.Stdout, w) {
					t.Errorf("inspect lacks %q:\n%s", w, ins.Stdout)
				}
			}
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img2 := filepath.Join(dir, "filedata2.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c",
				guest+" "+img2+" "+dir+"; "+h.Bin+" checkpt -r "+img2)
			if !strings.Contains(r.Stdout, "r=0 errno=0") {
				t.Fatalf("the freeze did not print r=0:\n%s", r)
			}
			check(t, r)
		})
		t.Run("same-sandbox-overlay", func(t *testing.T) {
			// Everything in the sandbox's overlay (tmpfs upper layer), the write-only file too.
			r := h.Do(t, harness.Opts{Platform: p}, "/bin/sh", "-c",
				"mkdir -p /tmp/fd && "+guest+" /tmp/fd.ckpt /tmp/fd /tmp; "+h.Bin+" checkpt -r /tmp/fd.ckpt")
			if !strings.Contains(r.Stdout, "r=0 errno=0") {
				t.Fatalf("the freeze did not print r=0:\n%s", r)
			}
			check(t, r, objFileDataWriteOnly...)
			if !strings.Contains(r.Stdout, "wo_link=/tmp/wo (deleted)\n") {
				t.Errorf("the write-only file was not recreated in /tmp:\n%s", r)
			}
		})
		t.Run("generation-2", func(t *testing.T) {
			// The thawed process (its objects rebuilt, its shared mappings MapObject again) is
			// frozen again right after its thaw; the checks run after the second thaw.
			img1, img2 := filepath.Join(dir, "gen1.ckpt"), filepath.Join(dir, "gen2.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c",
				guest+" "+img1+" "+dir+" - "+img2+"; "+h.Bin+" checkpt -r "+img1+"; "+h.Bin+" checkpt -r "+img2)
			if !strings.Contains(r.Stdout, "r=0 errno=0\nr=1 errno=0\nr2=0 errno=0\nr2=1 errno=0\n") {
				t.Fatalf("want freeze, thaw, freeze, thaw:\n%s", r)
			}
			check(t, r)
			// The first image, unlinked while the thawed process kept fd 20 on it, is not copied
			// into the second (it gets a placeholder, as before format 1.2).
			ins := h.Do(t, harness.Opts{Platform: p, Persist: true}, h.Bin, "inspect", img2)
			ins.WantExit(t, 0)
			if strings.Contains(ins.Stdout, "unlinked file \""+img1) || strings.Count(ins.Stdout, "unlinked file") != 1 {
				t.Errorf("the second image holds the first:\n%s", ins.Stdout)
			}
		})
		t.Run("too-large", func(t *testing.T) {
			// More than imgfmt.MaxObjectData (64 MiB) of data in one memfd: EFBIG.
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, filepath.Join(dir, "big.ckpt"), dir, "big")
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=-1 errno=27\n") {
				t.Errorf("want the freeze refused with EFBIG:\n%s", r)
			}
		})
		t.Run("write-only-host-file", func(t *testing.T) {
			// A write-only unlinked file on a host directory cannot be read back: refused.
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, filepath.Join(dir, "wo.ckpt"), dir, dir)
			r.WantExit(t, 1)
			if !strings.Contains(r.Stdout, "r=-1 errno=95\n") {
				t.Errorf("want the freeze refused with EOPNOTSUPP:\n%s", r)
			}
		})
	})
}

// TestObjFileDataPython: what Python programs use for scratch data — tempfile.TemporaryFile (an
// unlinked file), os.memfd_create and mmap.mmap(-1, n) (shared anonymous memory) — survives a
// freeze and a thaw in a new sandbox, the mmap still shared with a child forked after the thaw.
func TestObjFileDataPython(t *testing.T) {
	script := filepath.Join(h.Root, "test", "guests", "obj_filedata.py")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img := filepath.Join(dir, "py.ckpt")
		frozenGuest(t, p, "r=0 errno=0", "/usr/bin/python3", script, img, dir)
		r := checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "tmp=True memfd=True mmap=True shared=True\n") {
			t.Errorf("thawed python3:\n%s", r)
		}
	})
}
