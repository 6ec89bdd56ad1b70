package imgfmt

import "fmt"

// FormatError reports an image (or a Process to encode) that breaks the format: a bad header field,
// a size or count out of range, a note with the wrong layout, overlapping mappings, and so on. The
// sentry maps it to EINVAL. I/O errors are returned wrapped, not as FormatError.
type FormatError struct {
	// Offset is the byte offset in the image of the offending header, program header or note, or -1
	// when the error was found in a Process (encoder side) rather than in bytes.
	Offset int64
	// What names the offending part and says what is wrong with it.
	What string
}

// Error implements error.
func (e *FormatError) Error() string {
	if e.Offset < 0 {
		return "imgfmt: invalid process image: " + e.What
	}
	return fmt.Sprintf("imgfmt: invalid image at offset %#x: %s", e.Offset, e.What)
}

// formatErrorf builds a *FormatError.
func formatErrorf(off int64, format string, args ...any) *FormatError {
	return &FormatError{Offset: off, What: fmt.Sprintf(format, args...)}
}
