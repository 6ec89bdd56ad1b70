package imgfmt

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable returns s for a terminal: unchanged if every rune is printable (spaces included),
// otherwise with each control character, invalid byte and backslash escaped as Go escapes them in
// a quoted string ("\x1b", "\n", "\u009b", "\\"). Names in an image are the frozen program's or
// a crafted image's, and must never reach the operator's terminal as escape sequences.
func Printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || !unicode.IsPrint(r) && r != ' ' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[0])|0x100, 16)[1:])
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.IsPrint(r) || r == ' ':
			b.WriteString(s[:n])
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\n', '\u009b'
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[n:]
	}
	return b.String()
}
