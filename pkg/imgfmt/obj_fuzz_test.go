package imgfmt

import "testing"

// FuzzDecodeEventObjects fuzzes images holding pipe, epoll, timerfd and signalfd objects (the
// generic FuzzDecode's seeds have no objects): the decoder must not panic, must return only
// FormatErrors, and an accepted image must re-encode to the same bytes.
func FuzzDecodeEventObjects(f *testing.F) {
	for _, p := range []*Process{pipeProcess(), epollProcess(), timerProcess()} {
		f.Add(encodeToBytes(f, p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeCanonical(t, data)
	})
}
