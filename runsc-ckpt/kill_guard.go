package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/runsc/container"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// What `kill CID SIGCKPT` takes from the container, and why none of it is trusted
// (docs/security.md, "The host kill helper"): the helper runs inside the container as a process
// any root guest can see, ptrace or reach through /proc/PID/fd; its report pipe and its stderr
// pipe are therefore guest-writable, and the helper itself can be held stopped. So the host
// command bounds everything it reads from there and how long it waits: a report longer than the
// targets need is an error, the helper's stderr is relayed with control characters escaped and
// cut at maxHelperStderr, a pipe still held open once the helper is gone is abandoned after
// helperPipeGrace, and a helper that has not ended after helperTimeout is killed.

const (
	// maxReportLine bounds one "PID ERRNO" report line (two decimal ints and a space).
	maxReportLine = 24
	// maxHelperStderr bounds what of the helper's stderr is relayed to ours.
	maxHelperStderr = 16 << 10
	// helperPipeGrace is how long the pipes are read after the helper has exited: a process that
	// opened them through /proc keeps them from reaching EOF.
	helperPipeGrace = 2 * time.Second
	// helperTimeout bounds the helper's whole run (it sends a few signals and exits: milliseconds).
	helperTimeout = 60 * time.Second
)

// readReport reads the helper's report from r: at most what targets need (two lines each),
// until EOF or, once done is closed (the helper has exited), helperPipeGrace later.
func readReport(r *os.File, targets int, done <-chan struct{}) ([]byte, error) {
	limit := int64(2*targets*maxReportLine) + 1
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, limit))
		ch <- result{b, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-done:
		_ = r.SetReadDeadline(time.Now().Add(helperPipeGrace))
		res = <-ch
	}
	if errors.Is(res.err, os.ErrDeadlineExceeded) {
		// Someone else holds the write end; what the helper wrote is in b.
		res.err = nil
	}
	if int64(len(res.b)) >= limit {
		return nil, fmt.Errorf("signal helper: report longer than %d bytes for %d targets", limit-1, targets)
	}
	return res.b, res.err
}

// relayHelperStderr copies the helper's stderr from r to w, one line at a time with control
// characters escaped (imgfmt.Printable), at most maxHelperStderr bytes, until EOF or, once done
// is closed, helperPipeGrace later. It returns when it is finished.
func relayHelperStderr(w io.Writer, r *os.File, done <-chan struct{}) {
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		br := bufio.NewReaderSize(io.LimitReader(r, maxHelperStderr), 4096)
		for {
			line, err := br.ReadString('\n')
			if len(line) > 0 {
				trimmed := line
				if trimmed[len(trimmed)-1] == '\n' {
					trimmed = trimmed[:len(trimmed)-1]
				}
				fmt.Fprintln(w, imgfmt.Printable(trimmed))
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-finished:
	case <-done:
		_ = r.SetReadDeadline(time.Now().Add(helperPipeGrace))
		<-finished
	}
}

// waitHelper waits for the helper (pid in c) to exit, killing it if it has not after
// helperTimeout (a guest that holds it stopped under ptrace). It closes done when it returns.
func waitHelper(c *container.Container, pid int32, done chan<- struct{}) (unix.WaitStatus, error) {
	defer close(done)
	type result struct {
		ws  unix.WaitStatus
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ws, err := c.WaitPID(pid)
		ch <- result{ws, err}
	}()
	timer := time.NewTimer(helperTimeout)
	defer timer.Stop()
	select {
	case res := <-ch:
		return res.ws, res.err
	case <-timer.C:
	}
	_ = c.SignalProcess(unix.SIGKILL, pid)
	select {
	case res := <-ch:
		if res.err != nil {
			return res.ws, res.err
		}
		return res.ws, fmt.Errorf("the signal helper (pid %d) did not finish within %v: killed", pid, helperTimeout)
	case <-time.After(helperPipeGrace):
		return 0, fmt.Errorf("the signal helper (pid %d) did not finish within %v and could not be reaped", pid, helperTimeout)
	}
}
