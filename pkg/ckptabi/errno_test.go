package ckptabi

import (
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// errnoValue returns the errno named name ("EINVAL"), or 0.
func errnoValue(name string) syscall.Errno {
	if name == "EOPNOTSUPP" { // ErrnoName calls 95 ENOTSUP.
		return syscall.EOPNOTSUPP
	}
	for e := syscall.Errno(1); e < 256; e++ {
		if unix.ErrnoName(e) == name {
			return e
		}
	}
	return 0
}

// docErrnos returns the errnos of docs/abi.md's table of errors (its "## Errors" section).
func docErrnos(t *testing.T) map[syscall.Errno]bool {
	t.Helper()
	b, err := os.ReadFile(repoFile("docs/abi.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Errors\n")
	if !ok {
		t.Fatal("docs/abi.md has no section ## Errors")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	cell := regexp.MustCompile(`(?m)^\| (E[A-Z, ]+) \|`)
	got := map[syscall.Errno]bool{}
	for _, m := range cell.FindAllStringSubmatch(sec, -1) {
		for _, name := range strings.Split(m[1], ",") {
			e := errnoValue(strings.TrimSpace(name))
			if e == 0 {
				t.Fatalf("docs/abi.md: %q is not an errno", name)
			}
			got[e] = true
		}
	}
	if len(got) == 0 {
		t.Fatal("docs/abi.md: no errno found in the table of errors")
	}
	return got
}

func TestErrnosMatchDoc(t *testing.T) {
	doc := docErrnos(t)
	for e := range doc {
		if !Documented(e) {
			t.Errorf("docs/abi.md lists %s; Errnos does not", unix.ErrnoName(e))
		}
	}
	for _, e := range Errnos {
		if !doc[e] {
			t.Errorf("Errnos has %s; docs/abi.md's table of errors does not", unix.ErrnoName(e))
		}
	}
}

// TestHeaderErrnosDocumented checks that every errno include/ckpt.h's comments name is one of
// Errnos (or ENOSYS, the answer outside runsc-ckpt).
func TestHeaderErrnosDocumented(t *testing.T) {
	b, err := os.ReadFile(repoFile("include/ckpt.h"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range regexp.MustCompile(`\bE[A-Z]{2,}\b`).FindAllString(string(b), -1) {
		e := errnoValue(name)
		if e == 0 || e == syscall.ENOSYS {
			continue
		}
		n++
		if !Documented(e) {
			t.Errorf("include/ckpt.h names %s; Errnos does not have it", name)
		}
	}
	if n == 0 {
		t.Fatal("include/ckpt.h names no errno")
	}
}

func TestThawErrno(t *testing.T) {
	for _, c := range []struct{ in, want syscall.Errno }{
		{syscall.EMFILE, syscall.EMFILE},
		{syscall.EOPNOTSUPP, syscall.EOPNOTSUPP},
		{syscall.EACCES, syscall.EACCES},
		{syscall.EBUSY, syscall.EBUSY},
		{syscall.EFBIG, syscall.EFBIG},
		{syscall.ESTALE, syscall.ESTALE},
		// A file the image names is now of another kind, or gone.
		{syscall.EISDIR, syscall.ESTALE},
		{syscall.ENOTDIR, syscall.ESTALE},
		{syscall.ENXIO, syscall.ESTALE},
		{syscall.ENODEV, syscall.ESTALE},
		{syscall.ELOOP, syscall.ESTALE},
		{syscall.ENOENT, syscall.ESTALE},
		// Undocumented, or documented for freezes only.
		{syscall.EFAULT, syscall.EINVAL},
		{syscall.ENOSYS, syscall.EINVAL},
		{syscall.EAGAIN, syscall.EINVAL},
		{0, syscall.EINVAL},
	} {
		if got := ThawErrno(c.in); got != c.want {
			t.Errorf("ThawErrno(%v) = %v, want %v", unix.ErrnoName(c.in), unix.ErrnoName(got), unix.ErrnoName(c.want))
		}
	}
	for _, e := range Errnos {
		if got := ThawErrno(e); !Documented(got) {
			t.Errorf("ThawErrno(%v) = %v, not a documented errno", e, got)
		}
	}
}
