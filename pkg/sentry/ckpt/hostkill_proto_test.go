package ckpt

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestHostKillRequestRoundTrip(t *testing.T) {
	pids := make([]int, HostKillMaxTargets)
	for i := range pids {
		pids[i] = 999999999 - i
	}
	for _, r := range []HostKillRequest{
		{Nonce: "0123456789abcdef", Signo: 62, PIDs: []int{1}},
		{Nonce: "a", Signo: 1, PIDs: []int{7, 1}},
		{Nonce: strings.Repeat("f", 32), Signo: 64, PIDs: pids},
	} {
		line := r.Line()
		if !strings.HasSuffix(line, "\n") || len(line) >= 4096 {
			t.Errorf("Line() of %d pids: %d bytes, want a line under PIPE_BUF", len(r.PIDs), len(line))
		}
		got, err := ParseHostKillRequest(strings.TrimSuffix(line, "\n"))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("ParseHostKillRequest(%q) = %+v, %v; want %+v", truncate(line, 80), got, err, r)
		}
	}
}

func TestHostKillRequestRefused(t *testing.T) {
	tooMany := "ab 62" + strings.Repeat(" 1", HostKillMaxTargets+1)
	for _, c := range []struct {
		line      string
		wantNonce string // the nonce the refusal is addressed to ("" for none)
	}{
		{"", ""},
		{"AB 62 1", ""},                         // uppercase
		{strings.Repeat("a", 33) + " 62 1", ""}, // too long a nonce
		{"ab-62 1", ""},
		{"ab 62", "ab"},
		{"ab 62 ", "ab"},
		{"ab 0 1", "ab"},
		{"ab 65 1", "ab"},
		{"ab -1 1", "ab"},
		{"ab 62 0", "ab"},
		{"ab 62 1234567890", "ab"},
		{"ab 62 +1", "ab"},
		{"ab 62 01", "ab"},
		{"ab 062 1", "ab"},
		{"ab 62 1  2", "ab"},
		{"ab 62 1\t2", "ab"},
		{tooMany, "ab"},
	} {
		r, err := ParseHostKillRequest(c.line)
		if err == nil {
			t.Errorf("ParseHostKillRequest(%q) = %+v, want an error", truncate(c.line, 80), r)
		}
		if r.Nonce != c.wantNonce {
			t.Errorf("ParseHostKillRequest(%q): nonce %q, want %q", truncate(c.line, 80), r.Nonce, c.wantNonce)
		}
	}
}

func TestHostKillReplyLines(t *testing.T) {
	for _, c := range []struct {
		nonce string
		pid   int
		errno unix.Errno
	}{{"ab", 1, 0}, {"ab", 999999999, unix.ESRCH}, {"0f", 0, unix.EAGAIN}} {
		line := hostKillReply(c.nonce, c.pid, c.errno)
		got, err := ParseHostKillReplyLine(strings.TrimSuffix(line, "\n"))
		want := HostKillReplyLine{Nonce: c.nonce, PID: c.pid, Errno: c.errno, Refused: c.pid == 0}
		if err != nil || got != want {
			t.Errorf("ParseHostKillReplyLine(%q) = %+v, %v; want %+v", line, got, err, want)
		}
	}
	for _, bad := range []string{"", "ab 1", "ab 1 2 3", "AB 1 0", "ab 0 0", "ab x 0", "ab 1 -1", "ab 1 12345"} {
		if got, err := ParseHostKillReplyLine(bad); err == nil {
			t.Errorf("ParseHostKillReplyLine(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestReadHostKillLine(t *testing.T) {
	long := strings.Repeat("x", 3*hostKillMaxLine)
	br := bufio.NewReaderSize(strings.NewReader("ab 62 1\n"+long+"\nab 62 2\npartial"), hostKillMaxLine+1)
	for _, want := range []struct {
		line string
		err  error
	}{{"ab 62 1", nil}, {"", errLineTooLong}, {"ab 62 2", nil}, {"", io.ErrUnexpectedEOF}} {
		line, err := readHostKillLine(br)
		if line != want.line || !errors.Is(err, want.err) {
			t.Errorf("readHostKillLine = %q, %v; want %q, %v", truncate(line, 40), err, want.line, want.err)
		}
	}
}

// FuzzParseHostKillRequest: any line parses or is refused without a panic, and what parses
// formats back to the same line.
func FuzzParseHostKillRequest(f *testing.F) {
	for _, seed := range []string{"ab 62 1", "0123456789abcdef 63 1 2 3", "ab 62", "x", "ab 64 999999999"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseHostKillRequest(line)
		if err != nil {
			return
		}
		if got := r.Line(); got != line+"\n" {
			t.Errorf("ParseHostKillRequest(%q) = %+v, which formats as %q", line, r, got)
		}
	})
}
