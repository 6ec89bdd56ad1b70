package imgfmt

import (
	"bytes"
	"strings"
	"testing"
)

// queuedTerminalProcess is terminalProcess with bytes queued both ways (odd lengths: padding).
func queuedTerminalProcess() *Process {
	p := terminalProcess()
	p.Objects[1].Body.(*TerminalObject).State.Queues = &TerminalQueues{
		Input:  TerminalQueue{Read: []byte("line1\n"), Wait: []byte("partia"), Readable: true},
		Output: TerminalQueue{Read: []byte("out1\r\nline1\r\n"), Readable: true},
	}
	return p
}

func TestTerminalQueuesCodec(t *testing.T) {
	q, _ := objectRoundTrip(t, queuedTerminalProcess())
	d := viewOf(q).Objects[1].Detail
	if !strings.Contains(d, "queued input 6+6 bytes, output 13+0 bytes") {
		t.Errorf("summary %q lacks the queues", d)
	}
	// Empty queues, a pending end of file only, and a full wait buffer round-trip too.
	for _, qs := range []TerminalQueues{
		{},
		{Input: TerminalQueue{Readable: true}},
		{Input: TerminalQueue{Read: bytes.Repeat([]byte{'r'}, TerminalReadMax), Wait: bytes.Repeat([]byte{'w'}, TerminalWaitMax)}},
	} {
		p := terminalProcess()
		p.Objects[1].Body.(*TerminalObject).State.Queues = &qs
		objectRoundTrip(t, p)
	}
	// An image without queues (written before them) still decodes, with Queues nil.
	p, _ := objectRoundTrip(t, terminalProcess())
	if p.Objects[1].Body.(*TerminalObject).State.Queues != nil {
		t.Errorf("an image without queues decoded with queues")
	}
}

func TestTerminalQueuesChecks(t *testing.T) {
	p := queuedTerminalProcess()
	p.Objects[1].Body.(*TerminalObject).State.Queues.Output.Read = make([]byte, TerminalReadMax+1)
	wantEncodeError(t, p, "output queue of 4097+0 bytes exceeds")
	p = queuedTerminalProcess()
	p.Objects[1].Body.(*TerminalObject).State.Queues.Input.Wait = make([]byte, TerminalWaitMax+1)
	wantEncodeError(t, p, "input queue of 6+1048577 bytes exceeds")

	// Patched bytes: the decoder refuses them before anything is built. The queues start after
	// the 3 ends and their padding.
	img := encodeToBytes(t, queuedTerminalProcess())
	body := bytes.LastIndex(img, []byte(OwnerRunscCkpt+"\x00")) + pad4(len(OwnerRunscCkpt)+1) + objectFixedSize + 4*objectFDSize
	const qs = 96 + 16
	for _, tc := range []struct {
		off  int
		val  byte
		want string
	}{
		{8, 2, "unknown flags"}, // queues without the state
		{qs, 4, "unknown queue flags"},
		{qs + 4 + 1, 0x20, "exceeds 4096"},        // input read length 0x2006
		{qs + 8 + 2, 0x20, "exceeds 1048576"},     // input wait length
		{qs + 12, 0xff, "do not fit in the note"}, // output read length 255
		{qs + 20, 1, "queue reserved"},
		{qs + 24 + 6 + 6 + 13, 1, "queue padding"},
	} {
		b := bytes.Clone(img)
		b[body+tc.off] = tc.val
		wantDecodeError(t, b, tc.want)
	}
}
