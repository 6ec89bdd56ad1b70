// Package imgfmt is the codec for runsc-ckpt's checkpoint image: an ELF64 ET_CORE file for x86-64
// that standard tools (readelf, gdb, debug/elf) read, carrying the standard Linux core notes plus
// runsc-ckpt's own versioned notes, and one page-aligned PT_LOAD per mapping so a thaw can map
// segments straight from the file.
//
// It sits between capture and storage: freeze (pkg/sentry/ckpt) fills a Process and encodes it; thaw
// decodes and validates an image back into a Process before anything in the caller is touched. The
// package imports nothing from gVisor so it can be tested and fuzzed alone. The byte layout is
// specified in docs/image-format.md.
package imgfmt
