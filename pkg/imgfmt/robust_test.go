package imgfmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// TestEveryByteFlipInHead flips each byte of the headers and notes of the test image in turn: the
// decoders must never panic and must either reject the image with a *FormatError or (for bytes the
// format does not constrain, such as register values) accept it canonically.
func TestEveryByteFlipInHead(t *testing.T) {
	img := encodeToBytes(t, testProcess())
	notesEnd := binary.LittleEndian.Uint64(img[64+8:]) + binary.LittleEndian.Uint64(img[64+32:])
	accepted := 0
	for i := 0; i < int(notesEnd); i++ {
		b := bytes.Clone(img)
		b[i] ^= 0x41
		p, err := Decode(bytes.NewReader(b), int64(len(b)))
		streamErr := decodeStreamAll(b)
		if (err == nil) != (streamErr == nil) {
			t.Fatalf("byte %#x: decoders disagree: %v vs %v", i, err, streamErr)
		}
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("byte %#x: error %T %v is not a *FormatError", i, err, err)
			}
			continue
		}
		accepted++
		if !bytes.Equal(encodeToBytes(t, p), b) {
			t.Fatalf("byte %#x: accepted image does not re-encode to itself", i)
		}
	}
	t.Logf("%d of %d head bytes are free values (registers, FP state, addresses, ...)", accepted, notesEnd)
}

// TestEveryTruncation decodes every prefix of a small image.
func TestEveryTruncation(t *testing.T) {
	img := encodeToBytes(t, testProcess())
	for n := 0; n < len(img); n++ {
		if _, err := Decode(bytes.NewReader(img[:n]), int64(n)); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
		if err := decodeStreamAll(img[:n]); err == nil {
			t.Fatalf("stream prefix of %d bytes accepted", n)
		}
	}
}

// TestAllocationBoundedByInput feeds headers that claim the largest counts and sizes with hardly
// any bytes behind them, and checks the decoders allocate in proportion to the input, not the claims.
func TestAllocationBoundedByInput(t *testing.T) {
	img := encodeToBytes(t, testProcess())
	head := bytes.Clone(img[:512])
	binary.LittleEndian.PutUint16(head[56:], MaxMappings+1)           // e_phnum
	binary.LittleEndian.PutUint64(head[64+32:], MaxNotesSize)         // PT_NOTE p_filesz
	binary.LittleEndian.PutUint64(head[64+8:], 64+56*(MaxMappings+1)) // PT_NOTE p_offset
	for name, decode := range map[string]func([]byte) error{
		"ReaderAt": func(b []byte) error { _, err := Decode(bytes.NewReader(b), int64(len(b))); return err },
		"ReaderAt with a lying size": func(b []byte) error {
			_, err := Decode(bytes.NewReader(b), 1<<40)
			return err
		},
		"stream": decodeStreamAll,
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := decode(head)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
			t.Errorf("%s: decoding %d bytes allocated %d bytes", name, len(head), got)
		}
	}
}

// TestLimits encodes and decodes a process at the mapping and thread limits, and checks one more
// of either is refused.
func TestLimits(t *testing.T) {
	p := testProcess()
	p.Mappings = p.Mappings[:0]
	for i := 0; i < MaxMappings; i++ {
		start := uint64(0x10000000 + 2*i*PageSize)
		p.Mappings = append(p.Mappings, Mapping{Start: start, End: start + PageSize, Prot: ProtRead, Kind: MapZero})
	}
	base := p.Threads[1]
	for len(p.Threads) < MaxThreads {
		th := base
		th.TID = int32(100 + len(p.Threads))
		p.Threads = append(p.Threads, th)
	}
	img := encodeToBytes(t, p)
	q, err := Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Decode at the limits: %v", err)
	}
	if len(q.Mappings) != MaxMappings || len(q.Threads) != MaxThreads {
		t.Fatalf("decoded %d mappings, %d threads", len(q.Mappings), len(q.Threads))
	}
	if err := decodeStreamAll(img); err != nil {
		t.Fatalf("stream decode at the limits: %v", err)
	}

	p.Mappings = append(p.Mappings, Mapping{Start: 0x7f0000000000, End: 0x7f0000001000, Prot: ProtRead, Kind: MapZero})
	if err := Validate(p); err == nil {
		t.Error("MaxMappings+1 mappings accepted")
	}
	p.Mappings = p.Mappings[:MaxMappings]
	th := base
	th.TID = 99
	p.Threads = append(p.Threads, th)
	if err := Validate(p); err == nil {
		t.Error("MaxThreads+1 threads accepted")
	}
}
