package imgfmt

import "testing"

// TestPrintable: Printable escapes control characters (inspect's text output of names is checked
// in package inspect) and leaves printable strings alone.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/prog name": "/usr/bin/prog name",
		"ünïcode":            "ünïcode",
		"e\x1b[2Jv\x07\n":    `e\x1b[2Jv\a\n`,
		"/tmp/\r\x9b2J":      `/tmp/\r\x9b2J`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
