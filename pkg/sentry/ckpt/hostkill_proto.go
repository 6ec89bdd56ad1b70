package ckpt

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The host-kill channel's protocol (docs/notes-sigckpt.md, "The kill channel"). `runsc-ckpt kill
// CID SIGCKPT` writes one request line to the sandbox's request FIFO and reads the sentry's
// answer from its reply FIFO:
//
//	request:  NONCE SIGNO PID...\n
//	reply:    NONCE PID ERRNO\n       twice per target, in order: whether the process exists
//	                                  (before anything is sent), then the result of the signal
//	          NONCE - ERRNO\n         once, instead, for a request the sentry refuses
//
// NONCE (1-32 lowercase hex digits) ties the answer to its request, so that a late answer to a
// client that gave up is not taken by the next one. The first line of a target stands for the
// result when the second never comes: SIGCKPTEXIT to the sandbox's init may end the sentry first
// (the image is complete by then: the init exits after its freeze).

const (
	// HostKillMaxTargets bounds the pids of one request, so that a request line stays below
	// PIPE_BUF (4096) and is written and read whole.
	HostKillMaxTargets = 256
	// hostKillMaxLine bounds a request line: NONCE, SIGNO and HostKillMaxTargets pids of 9
	// digits, with their spaces and the newline.
	hostKillMaxLine = 32 + 1 + 2 + HostKillMaxTargets*10 + 1
)

// HostKillRequest is one request of the kill channel.
type HostKillRequest struct {
	Nonce string
	Signo int
	PIDs  []int
}

// Line returns r as a request line.
func (r HostKillRequest) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d", r.Nonce, r.Signo)
	for _, pid := range r.PIDs {
		fmt.Fprintf(&b, " %d", pid)
	}
	b.WriteByte('\n')
	return b.String()
}

// ParseHostKillRequest parses a request line (without its newline). An error names what is wrong;
// the nonce is returned with it when it was readable, so that the refusal can be addressed.
func ParseHostKillRequest(line string) (HostKillRequest, error) {
	fields := strings.Split(line, " ")
	var r HostKillRequest
	if !validNonce(fields[0]) {
		return r, fmt.Errorf("kill channel: bad nonce in %q", truncate(line, 64))
	}
	r.Nonce = fields[0]
	if len(line) >= hostKillMaxLine {
		return r, fmt.Errorf("kill channel: request of %d bytes", len(line))
	}
	if len(fields) < 3 {
		return r, fmt.Errorf("kill channel: request %q names no process", line)
	}
	if len(fields)-2 > HostKillMaxTargets {
		return r, fmt.Errorf("kill channel: %d targets, at most %d", len(fields)-2, HostKillMaxTargets)
	}
	sig, ok := smallDecimal(fields[1], 2)
	if !ok || sig < 1 || sig > 64 {
		return r, fmt.Errorf("kill channel: bad signal %q", fields[1])
	}
	r.Signo = sig
	for _, f := range fields[2:] {
		pid, ok := smallDecimal(f, 9)
		if !ok || pid < 1 {
			return r, fmt.Errorf("kill channel: bad pid %q", f)
		}
		r.PIDs = append(r.PIDs, pid)
	}
	return r, nil
}

// HostKillReplyLine is one parsed reply line. Refused is true for "NONCE - ERRNO" (PID is then 0).
type HostKillReplyLine struct {
	Nonce   string
	PID     int
	Errno   unix.Errno
	Refused bool
}

// ParseHostKillReplyLine parses a reply line (without its newline).
func ParseHostKillReplyLine(line string) (HostKillReplyLine, error) {
	fields := strings.Split(line, " ")
	if len(fields) != 3 || !validNonce(fields[0]) {
		return HostKillReplyLine{}, fmt.Errorf("kill channel: bad reply line %q", truncate(line, 64))
	}
	errno, ok := smallDecimal(fields[2], 4)
	if !ok {
		return HostKillReplyLine{}, fmt.Errorf("kill channel: bad errno in reply line %q", line)
	}
	l := HostKillReplyLine{Nonce: fields[0], Errno: unix.Errno(errno)}
	if fields[1] == "-" {
		l.Refused = true
		return l, nil
	}
	if l.PID, ok = smallDecimal(fields[1], 9); !ok || l.PID < 1 {
		return HostKillReplyLine{}, fmt.Errorf("kill channel: bad pid in reply line %q", line)
	}
	return l, nil
}

// hostKillReply returns the reply line for pid (0: the whole request) and errno.
func hostKillReply(nonce string, pid int, errno unix.Errno) string {
	if pid == 0 {
		return fmt.Sprintf("%s - %d\n", nonce, int(errno))
	}
	return fmt.Sprintf("%s %d %d\n", nonce, pid, int(errno))
}

// validNonce reports whether s is 1-32 lowercase hex digits.
func validNonce(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// smallDecimal parses 1 to maxDigits decimal digits (no sign, no leading zero, no other
// characters): every number has one spelling.
func smallDecimal(s string, maxDigits int) (int, bool) {
	if len(s) == 0 || len(s) > maxDigits || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// truncate returns s cut to at most n bytes, for error messages.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
