package test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestThawMalformedObject (issue 8 item 9): an image whose object note is malformed — an unknown
// object kind, a count that does not fit in the note — is refused by the decoder before anything
// is built: the thaw fails with EINVAL and the caller (thaw_bad) keeps running with its memory
// intact. The image is a real one (freeze_basic's) with a process-attributes object added, then
// patched where docs/image-format.md puts each field; unpatched, it thaws.
func TestThawMalformedObject(t *testing.T) {
	bad := h.BuildC(t, "thaw_bad")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		proc := decodeImage(t, hostileBase(t, p, dir))
		m := proc.Mappings[0]
		id := uint32(len(proc.Objects) + 1)
		proc.Objects = append(proc.Objects, imgfmt.Object{ID: id, Body: &imgfmt.ProcAttrsObject{Umask: 0o22,
			DontFork: []imgfmt.AddrRange{{Start: m.Start, End: m.Start + imgfmt.PageSize}}}})
		var buf bytes.Buffer
		if err := imgfmt.Encode(&buf, proc); err != nil {
			t.Fatal(err)
		}
		good := buf.Bytes()
		// The object's body: umask, oom_score_adj, flags, nrseq (0), nranges, reserved, then the
		// range, whose 16 bytes (start, end) the mapping note also holds: the object note is last.
		rng := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, m.Start), m.Start+imgfmt.PageSize)
		at := bytes.LastIndex(good, rng)
		if at < 0 {
			t.Fatal("the added range is not in the image")
		}
		body := at - 24
		for _, c := range []struct {
			name  string
			off   int // from the body
			patch []byte
		}{
			{"unpatched", 0, nil},                   // the control: the image with the object thaws
			{"unknown_kind", -24 + 4, []byte{0x7f}}, // the object note's kind
			{"ranges_do_not_fit", 16, []byte{0xff, 0xff}},
		} {
			t.Run(c.name, func(t *testing.T) {
				b := bytes.Clone(good)
				copy(b[body+c.off:], c.patch)
				img := filepath.Join(dir, c.name+".ckpt")
				if err := os.WriteFile(img, b, 0o644); err != nil {
					t.Fatal(err)
				}
				r := h.Do(t, harness.Opts{Platform: p, Persist: true, Timeout: 45 * time.Second}, bad, img)
				if c.patch == nil {
					if !strings.Contains(r.Stdout, "freeze=1 errno=0 ") {
						t.Errorf("want the unpatched image to thaw:\n%s", r)
					}
					return
				}
				if out, err := exec.Command(h.Bin, "inspect", img).CombinedOutput(); err == nil || !strings.Contains(string(out), "object note") {
					t.Errorf("inspect: %v, want it to refuse the object note:\n%s", err, out)
				}
				r.WantExit(t, 0)
				if want := "thaw=-1 errno=EINVAL\nalive canary=5eed\n"; !strings.Contains(r.Stdout, want) {
					t.Errorf("want %q:\n%s", want, r)
				}
			})
		}
	})
}
