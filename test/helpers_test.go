package test

// Helpers shared by the integration tests: reading images, parsing guest output, polling, and the
// thaw-in-a-new-and-in-the-same-sandbox pattern of the object tests. Each is said once here.

import (
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// sigckptArg and sigckptExitArg are SIGCKPT and SIGCKPTEXIT as a command line, a shell script or a
// guest's output writes them ("62", "63"), so that no test spells the numbers itself.
var (
	sigckptArg     = strconv.Itoa(ckptabi.SIGCKPT)
	sigckptExitArg = strconv.Itoa(ckptabi.SIGCKPTEXIT)
)

// decodeImage checks that path is an x86-64 ELF core file and decodes it with the codec, failing
// t otherwise. The file stays open until the test ends, so the mappings' Contents can be read
// (e.g. to re-encode it).
func decodeImage(t *testing.T, path string) *imgfmt.Process {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("opening image: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	ef, err := elf.NewFile(f)
	if err != nil {
		t.Fatalf("image %s is not an ELF file: %v", path, err)
	}
	if ef.Type != elf.ET_CORE || ef.Machine != elf.EM_X86_64 {
		t.Fatalf("image %s: type %v machine %v, want ET_CORE EM_X86_64", path, ef.Type, ef.Machine)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	p, err := imgfmt.Decode(f, st.Size())
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return p
}

// decodeCkptFile is decodeImage for a ckpt-file (the image a checkpoint signal writes), which
// must also be readable and writable by its owner only.
func decodeCkptFile(t *testing.T, path string) *imgfmt.Process {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("image %s has mode %v, want 0600", path, mode)
	}
	return decodeImage(t, path)
}

// comm is the process name (comm, at most 15 bytes) of a program: its base name.
func comm(program string) string {
	name := filepath.Base(program)
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

// itoa formats n in decimal.
func itoa(n int32) string { return strconv.Itoa(int(n)) }

// field returns the value of "name=value" in out, or "".
func field(out, name string) string {
	m := regexp.MustCompile(`(?m)\b` + name + `=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// lineValue returns the integer after "key " on the first line of out that starts with it.
func lineValue(t *testing.T, out, key string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` (-?\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output lacks %q:\n%s", key, out)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// wantLines fails t unless out contains every line of want.
func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains("\n"+out, "\n"+w+"\n") {
			t.Errorf("output lacks line %q:\n%s", w, out)
		}
	}
}

// grepLines returns the lines of s matching the regular expression re.
func grepLines(s, re string) string {
	rx := regexp.MustCompile(re)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if rx.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// waitFor polls cond until it holds or timeout passes (then the test fails).
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !pollUntil(timeout, cond) {
		t.Fatalf("condition not met within %v", timeout)
	}
}

// pollUntil polls cond every 20 ms until it holds or timeout passes, and reports whether it held:
// waitFor for a caller with a better failure message of its own.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// waitForFile polls until path exists, failing t after timeout.
func waitForFile(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

// objThaw is one use of the object tests' pattern (thawNewAndSame).
type objThaw struct {
	guest string // The built guest; its last argument is the image path.
	img   string // The image's file name.
	// want is what the thawed guest must print (a substring of its output).
	want string
	// inspect are strings `inspect` must show for the image (checked in the new sandbox).
	inspect []string
	// exec: in the same sandbox, the shell execs the thawer instead of forking it.
	exec bool
	// same, if not nil, runs more checks in the same-sandbox subtest with the image it thawed.
	same func(t *testing.T, p, img string)
}

// thawNewAndSame runs the object tests' pattern on every platform: o.guest freezes itself,
// printing "r=0 errno=0", and kills itself; `checkpt -r` thaws the image in a new sandbox
// (subtest new_sandbox) and, after freezing anew, in the same sandbox (same_sandbox); each thawed
// guest must print o.want.
func thawNewAndSame(t *testing.T, o objThaw) {
	t.Helper()
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new_sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), o.img)
			frozenGuest(t, p, "r=0 errno=0", o.guest, img)
			if len(o.inspect) > 0 {
				out := runTool(t, h.Bin, "inspect", img)
				for _, w := range o.inspect {
					if !strings.Contains(out, w) {
						t.Errorf("inspect does not show %q:\n%s", w, out)
					}
				}
			}
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, o.want) {
				t.Errorf("thawed guest: want %q:\n%s", o.want, r)
			}
		})
		t.Run("same_sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), o.img)
			thaw := h.Bin + " checkpt -r " + img
			if o.exec {
				thaw = "exec " + thaw
			}
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", o.guest+" "+img+"; "+thaw)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=0 errno=0\n") || !strings.Contains(r.Stdout, o.want) {
				t.Errorf("want a freeze, then a thawed guest printing %q:\n%s", o.want, r)
			}
			if o.same != nil {
				o.same(t, p, img)
			}
		})
	})
}
