package imgfmt

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeEventObjects fuzzes images holding pipe, epoll, timerfd and signalfd objects (the
// generic FuzzDecode's seeds have no objects): the decoder must not panic, must return only
// FormatErrors, and an accepted image must re-encode to the same bytes.
func FuzzDecodeEventObjects(f *testing.F) {
	for _, p := range []*Process{pipeProcess(), epollProcess(), timerProcess()} {
		f.Add(encodeToBytes(f, p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Decode returned %T %v, want a *FormatError", err, err)
			}
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, p); err != nil {
			t.Fatalf("re-encoding an accepted image: %v", err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("accepted image is not canonical")
		}
	})
}
