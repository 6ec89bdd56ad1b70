package vfsfh

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func regular() Handle {
	return Handle{Path: "/data/log.txt", DevMajor: 0, DevMinor: 25, Ino: 91, Mode: ModeRegular | 0o644,
		Size: 4096, MtimeNano: 1_700_000_000_123_456_789, CtimeNano: 1_700_000_001_000_000_000}
}

func TestVerifySameFile(t *testing.T) {
	for _, c := range []Check{CheckKind, CheckContent, CheckAll} {
		if err := VerifyWith(regular(), regular(), c); err != nil {
			t.Errorf("VerifyWith(same, same, %#x) = %v, want nil", c, err)
		}
	}
}

func TestVerifyDetectsEachChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Handle)
		checks Check
		reason string
	}{
		{"type", func(h *Handle) { h.Mode = ModeDir | 0o644 }, CheckKind, "type"},
		{"size", func(h *Handle) { h.Size++ }, CheckContent, "size 4097 != 4096"},
		{"mtime", func(h *Handle) { h.MtimeNano++ }, CheckContent, "mtime"},
		{"ctime", func(h *Handle) { h.CtimeNano-- }, CheckContent, "ctime"},
		{"ino", func(h *Handle) { h.Ino = 92 }, CheckInode, "inode 92 != 91"},
		{"dev", func(h *Handle) { h.DevMinor = 26 }, CheckInode, "device 0:26 != 0:25"},
		{"perm", func(h *Handle) { h.Mode = ModeRegular | 0o600 }, CheckPerm, "permissions 0600 != 0644"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			have := regular()
			tc.change(&have)
			err := VerifyWith(have, regular(), tc.checks)
			if err == nil {
				t.Fatalf("VerifyWith(changed %s, %#x) = nil, want stale", tc.name, tc.checks)
			}
			if !errors.Is(err, ErrStale) {
				t.Errorf("error %v does not match ErrStale", err)
			}
			if !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), "/data/log.txt") {
				t.Errorf("error %q lacks %q or the path", err, tc.reason)
			}
		})
	}
}

func TestVerifyIgnoresUnselected(t *testing.T) {
	have := regular()
	have.Ino, have.DevMinor = 7, 3 // another sandbox numbers inodes differently
	if err := Verify(have, regular()); err != nil {
		t.Errorf("Verify with only inode/device changed = %v, want nil (CheckContent ignores them)", err)
	}
	have = regular()
	have.Size, have.MtimeNano, have.CtimeNano = 1, 2, 3 // a log the process kept writing
	if err := VerifyWith(have, regular(), CheckKind); err != nil {
		t.Errorf("VerifyWith(CheckKind) with contents changed = %v, want nil", err)
	}
}

func TestGoneMatchesStaleAndCause(t *testing.T) {
	err := Gone(regular(), syscall.ENOENT)
	if !errors.Is(err, ErrStale) {
		t.Errorf("Gone() = %v, does not match ErrStale", err)
	}
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Gone() = %v, does not unwrap to ENOENT", err)
	}
	if !strings.Contains(err.Error(), "/data/log.txt") {
		t.Errorf("Gone() = %q lacks the path", err)
	}
}

func TestReopenable(t *testing.T) {
	tests := []struct {
		h    Handle
		want bool
	}{
		{regular(), true},
		{Handle{Path: "/", Mode: ModeDir | 0o755}, true},
		{Handle{Path: "/dev/null", Mode: ModeCharDev | 0o666}, true},
		{Handle{Path: "/tmp/x (deleted)", Mode: ModeRegular | 0o600}, false},
		{Handle{Path: "pipe:[12]", Mode: ModeFIFO | 0o600}, false},
		{Handle{Path: "socket:[3]", Mode: ModeSocket | 0o777}, false},
		{Handle{Path: "anon_inode:[eventfd]", Mode: 0o600}, false},
		{Handle{Path: "/run/sock", Mode: ModeSocket | 0o777}, false},
	}
	for _, tc := range tests {
		if got := tc.h.Reopenable(); got != tc.want {
			t.Errorf("%v.Reopenable() = %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestImageRoundTrip(t *testing.T) {
	h := regular()
	if got := FromImage(h.ToImage()); got != h {
		t.Errorf("FromImage(ToImage(h)) = %v, want %v", got, h)
	}
	if got := FromImage(nil); got != (Handle{}) {
		t.Errorf("FromImage(nil) = %v, want zero", got)
	}
}

// statHandle builds a Handle from a host file the way the sentry adapter does from a gVisor stat.
func statHandle(t *testing.T, path string) Handle {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return Handle{Path: path, DevMajor: uint32(st.Dev >> 8 & 0xfff), DevMinor: uint32(st.Dev&0xff | st.Dev>>12&^0xff),
		Ino: st.Ino, Mode: st.Mode, Size: st.Size, MtimeNano: st.Mtim.Nano(), CtimeNano: st.Ctim.Nano()}
}

// TestVerifyRealFileLifecycle drives Verify with real stat results: unchanged, appended to,
// replaced by another file under the same name.
func TestVerifyRealFileLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := statHandle(t, path)
	if err := VerifyWith(statHandle(t, path), want, CheckAll); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}

	time.Sleep(10 * time.Millisecond) // make the timestamps move on coarse clocks
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(" world"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := Verify(statHandle(t, path), want); !errors.Is(err, ErrStale) {
		t.Errorf("appended file: Verify = %v, want stale", err)
	}
	if err := VerifyWith(statHandle(t, path), want, CheckKind|CheckInode); err != nil {
		t.Errorf("appended file, kind+inode only: %v", err)
	}

	// Same name, same size, new inode: only the inode check and the times tell.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := VerifyWith(statHandle(t, path), want, CheckInode|CheckTimes); !errors.Is(err, ErrStale) {
		t.Errorf("replaced file: VerifyWith(inode|times) = %v, want stale", err)
	}
}

// TestVerifyTimesNear: CheckTimesNear accepts times up to TimeSlack apart either way and refuses
// more; CheckTimes stays exact.
func TestVerifyTimesNear(t *testing.T) {
	want := Handle{Path: "/f", Mode: ModeRegular | 0o644, Size: 1, MtimeNano: 5e9, CtimeNano: 6e9}
	for _, c := range []struct {
		dm, dc int64
		checks Check
		ok     bool
	}{
		{0, 0, CheckTimesNear, true},
		{TimeSlack, -TimeSlack, CheckTimesNear, true},
		{-6_651_547, 6_651_547, CheckTimesNear, true},
		{TimeSlack + 1, 0, CheckTimesNear, false},
		{0, -TimeSlack - 1, CheckTimesNear, false},
		{1, 0, CheckTimes | CheckTimesNear, false},
	} {
		have := want
		have.MtimeNano += c.dm
		have.CtimeNano += c.dc
		if err := VerifyWith(have, want, c.checks); (err == nil) != c.ok {
			t.Errorf("mtime%+d ctime%+d checks %#x: err = %v, want ok=%t", c.dm, c.dc, c.checks, err, c.ok)
		}
	}
}
