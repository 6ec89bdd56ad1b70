package imgfmt

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestWriteTextEscapesControlCharacters (issue 13 item 15): names in an image are the frozen
// program's (comm, paths, descriptions) and a crafted image's; inspect must not print their control
// characters to the operator's terminal (an ESC starts a terminal escape sequence).
func TestWriteTextEscapesControlCharacters(t *testing.T) {
	p := testProcess()
	p.Info.Name = "e\x1b[2Jv\x07\n"
	p.VM.Exe.Path = "/bin/\x1b]0;pwned\x07"
	p.Cwd = &FileHandle{Path: "/tmp/\r\x9b2J", Mode: 0o40755}
	path := writeImage(t, t.TempDir(), "img", p)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	s, err := Inspect(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for i, r := range out {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r < 0xa0) {
			t.Fatalf("control character %U at byte %d of the summary:\n%q", r, i, out)
		}
	}
	for _, want := range []string{`e\x1b[2Jv\a\n`, `/bin/\x1b]0;pwned\a`, `/tmp/\r\x9b2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks the escaped %s:\n%s", want, out)
		}
	}
	if Printable("/usr/bin/prog name") != "/usr/bin/prog name" || Printable("ünïcode") != "ünïcode" {
		t.Error("Printable changed a printable string")
	}
}
