// Package imgfmt is the codec for runsc-ckpt's checkpoint image: an ELF64 ET_CORE file for x86-64
// that standard tools (readelf, gdb, debug/elf) read, carrying the standard Linux core notes plus
// runsc-ckpt's own versioned notes, and one page-aligned PT_LOAD per mapping so a thaw can map
// segments straight from the file.
//
// It sits between capture and storage: freeze (pkg/sentry/ckpt) fills a Process and encodes it; thaw
// decodes and validates an image back into a Process before anything in the caller is touched. The
// package imports nothing from gVisor so it can be tested and fuzzed alone. The byte layout is
// specified in docs/image-format.md.
//
// # Writing (freeze)
//
// Encode(w, p) validates p (Validate), then streams the headers and notes and each MapContent
// mapping's bytes, read from Mapping.Contents in 1 MiB chunks; it never seeks backwards and never
// holds more than one chunk. All-zero 4 KiB pages become holes when w can make them: w is adapted by
// NewSink, which picks
//
//   - w itself if it implements Sink (io.Writer plus Hole(n), "advance n bytes leaving zeros"): the
//     sentry implements Sink over its gVisor file description (write at the offset, Hole moves the
//     offset);
//   - a seeking sink for an io.WriteSeeker that can seek, such as a regular *os.File (FileSink);
//   - StreamSink otherwise (pipes, sockets, buffers): holes are written out as zeros.
//
// Encode never ends an image with a hole, so no truncate is needed afterwards. ImageSize tells the
// size in advance.
//
// # Reading (thaw, inspect)
//
// Decode(r, size) reads an image from an io.ReaderAt and validates everything (see the spec's
// "What the decoder checks") before returning; MapContent mappings get DataOffset (page-aligned, for
// mmap from the image) and Contents (a section of r). SegmentReader and ContentRuns read a mapping's
// bytes back, the latter as runs of non-zero pages. NewStreamDecoder reads from a plain io.Reader
// (a pipe): it validates the headers and notes, then Next yields each MapContent mapping's bytes in
// file order. Malformed input yields *FormatError (the sentry maps it to EINVAL); no input makes the
// decoders panic or allocate beyond what the input holds. The exported Max* constants are the limits
// both sides enforce.
//
// The summary `runsc-ckpt inspect` prints is package inspect's; this package exports only what that
// needs of the codec (view.go: FormatVersion, Object.KindName, Object.Detail).
package imgfmt
