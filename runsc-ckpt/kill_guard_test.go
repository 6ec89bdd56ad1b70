package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// A guest that opened the helper's report pipe through /proc keeps it from reaching EOF: once the
// helper is gone the report is read for helperPipeGrace more, and what the helper wrote counts.
func TestReadReportPipeHeldOpen(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close() // Held open by "the guest" until the test ends.
	if _, err := w.WriteString("7 0\n7 0\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	close(done) // The helper has exited.
	got, err := readReport(r, 1, done)
	if err != nil || string(got) != "7 0\n7 0\n" {
		t.Fatalf("readReport = %q, %v; want the helper's two lines", got, err)
	}
}

// A report longer than the targets need (a guest writing into the pipe) is refused, and the read
// ends without EOF.
func TestReadReportTooLong(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	go func() {
		junk := []byte(strings.Repeat("1 0\n", 1024))
		for {
			if _, err := w.Write(junk); err != nil {
				return
			}
		}
	}()
	if got, err := readReport(r, 2, make(chan struct{})); err == nil {
		t.Fatalf("readReport of an endless report = %d bytes, no error", len(got))
	}
}

// The helper's stderr reaches ours with control characters escaped and bounded in size.
func TestRelayHelperStderr(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		w.WriteString("runsc-ckpt-signal-helper: kill(7, 62): no such process\n")
		w.WriteString("\x1b]0;owned\x07\x1b[2J\r\n")
		w.WriteString(strings.Repeat("x", 4*maxHelperStderr))
		w.Close()
	}()
	var out bytes.Buffer
	relayHelperStderr(&out, r, make(chan struct{}))
	s := out.String()
	if !strings.HasPrefix(s, "runsc-ckpt-signal-helper: kill(7, 62): no such process\n") {
		t.Errorf("the helper's message is not relayed as it was: %q", s[:min(len(s), 80)])
	}
	if strings.ContainsAny(s, "\x1b\x07\r") {
		t.Errorf("control characters reached our stderr: %q", s[:min(len(s), 200)])
	}
	if len(s) > 2*maxHelperStderr {
		t.Errorf("relayed %d bytes, want at most about %d", len(s), maxHelperStderr)
	}
}

// A relay whose pipe a guest holds open ends helperPipeGrace after the helper is gone.
func TestRelayHelperStderrPipeHeldOpen(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	w.WriteString("line\n")
	done := make(chan struct{})
	close(done)
	var out bytes.Buffer
	finished := make(chan struct{})
	go func() {
		relayHelperStderr(&out, r, done)
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(time.Minute): // A bound for a hang, not a timing assertion.
		t.Fatal("the relay did not end with its pipe held open")
	}
	if out.String() != "line\n" {
		t.Errorf("relayed %q", out.String())
	}
}
