package imgfmt

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestSignalFDObjectDecodeErrors: a signalfd note cut short is a format error at the note. (The
// round trip and the checks are in obj_timerfd_test.go, whose process holds a signalfd too.)
func TestSignalFDObjectDecodeErrors(t *testing.T) {
	p := timerProcess()
	p.Objects = p.Objects[1:]
	p.Objects[0].ID = 1
	img := encodeToBytes(t, p)
	at := lastOwnNoteDesc(img)
	// The fd count claims one more fd: the body is read 8 bytes late and runs out.
	b := bytes.Clone(img)
	b[at+12] = 2
	_, err := Decode(bytes.NewReader(b), int64(len(b)))
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "too short") && !strings.Contains(err.Error(), "do not fit") {
		t.Fatalf("Decode: %v, want a FormatError", err)
	}
}
