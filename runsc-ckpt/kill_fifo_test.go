package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"
)

func TestReadKillReplies(t *testing.T) {
	for _, c := range []struct {
		name, in string
		n        int
		want     string
		wantErr  error // errors.Is; nil: none
		anyErr   bool
	}{
		{name: "two targets", in: "ab 1 0\nab 1 0\nab 7 0\nab 7 3\n", n: 4, want: "1 0\n1 0\n7 0\n7 3\n"},
		{name: "late answers of another request skipped", in: "cd 1 0\nab 1 0\ncd - 11\nab 1 0\n", n: 2, want: "1 0\n1 0\n"},
		{name: "not ready", in: "ab - 11\n", n: 2, wantErr: errNoKillChannel},
		{name: "refused", in: "ab - 22\n", n: 2, anyErr: true},
		{name: "sentry gone after the first line", in: "ab 1 0\n", n: 2, want: "1 0\n", wantErr: io.EOF},
		{name: "garbage", in: "ab 1\n", n: 2, anyErr: true},
	} {
		results, err := readKillReplies(bufio.NewReader(strings.NewReader(c.in)), "ab", c.n)
		var got string
		for _, r := range results {
			got += fmt.Sprintf("%d %d\n", r.pid, int(r.errno))
		}
		switch {
		case c.wantErr != nil && !errors.Is(err, c.wantErr), c.wantErr == nil && !c.anyErr && err != nil, c.anyErr && err == nil:
			t.Errorf("%s: error %v, want %v (any: %v)", c.name, err, c.wantErr, c.anyErr)
		case !c.anyErr && !errors.Is(c.wantErr, errNoKillChannel) && got != c.want:
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if errors.Is(err, errNoKillChannel) && c.wantErr == nil {
			t.Errorf("%s: a refusal other than EAGAIN must not fall back to the helper: %v", c.name, err)
		}
	}
}

func TestInheritedKillChannel(t *testing.T) {
	dir := t.TempDir()
	fd, err := openKillFIFO(filepath.Join(dir, "x.req"))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
		t.Errorf("FIFO fd flags %#x, %v: want no close-on-exec (boot re-executes itself)", flags, err)
	}
	plain, err := os.Create(filepath.Join(dir, "plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pid := os.Getpid()
	for _, c := range []struct {
		v  string
		ok bool
	}{
		{fmt.Sprintf("%d:%d:%d", pid, fd, fd), true},
		{fmt.Sprintf("%d:%d:%d", pid+1, fd, fd), false}, // another process's
		{fmt.Sprintf("%d:%d:%d", pid, fd, plain.Fd()), false},
		{fmt.Sprintf("%d:%d:999", pid, fd), false},
		{fmt.Sprintf("%d:%d", pid, fd), false},
		{fmt.Sprintf("%d:-1:%d", pid, fd), false},
		{"", false},
	} {
		if _, _, ok := inheritedKillChannel(c.v); ok != c.ok {
			t.Errorf("inheritedKillChannel(%q) ok = %v, want %v", c.v, ok, c.ok)
		}
	}
}

func TestSendViaKillChannelMissing(t *testing.T) {
	dir := t.TempDir()
	// No FIFOs: the helper's turn.
	if _, err := sendViaKillChannel(dir, "c1", 62, []int{1}); !errors.Is(err, errNoKillChannel) {
		t.Errorf("without FIFOs: %v, want errNoKillChannel", err)
	}
	// FIFOs nobody reads (a sandbox gone without delete): ENXIO, the helper's turn too.
	req, rep := killChannelPaths(dir, "c1")
	for _, p := range []string{req, rep} {
		if err := unix.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sendViaKillChannel(dir, "c1", 62, []int{1}); !errors.Is(err, errNoKillChannel) {
		t.Errorf("with FIFOs nobody reads: %v, want errNoKillChannel", err)
	}
	removeKillChannel(dir, "c1")
	for _, p := range []string{req, rep} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after removeKillChannel: %v", p, err)
		}
	}
}

// TestSendViaKillChannel runs the client against a stand-in for the sentry's server that answers
// a stale line of another request first, then both lines of each target.
func TestSendViaKillChannel(t *testing.T) {
	dir := t.TempDir()
	reqPath, repPath := killChannelPaths(dir, "c1")
	reqFD, err := openKillFIFO(reqPath)
	if err != nil {
		t.Fatal(err)
	}
	// One owner per descriptor: an os.File closes its fd when collected, so closing the number
	// as well could close another test's descriptor that reused it.
	req := os.NewFile(uintptr(reqFD), "req")
	defer req.Close()
	rep, err := openKillFIFO(repPath)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rep)
	served := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(req).ReadString('\n')
		if err != nil {
			served <- err
			return
		}
		r, err := ckpt.ParseHostKillRequest(strings.TrimSuffix(line, "\n"))
		if err != nil {
			served <- err
			return
		}
		answer := "0000 1 0\n"
		for _, pid := range r.PIDs {
			errno := 0
			if pid == 5 {
				errno = int(unix.ESRCH)
			}
			answer += fmt.Sprintf("%s %d 0\n%s %d %d\n", r.Nonce, pid, r.Nonce, pid, errno)
		}
		_, err = unix.Write(rep, []byte(answer))
		served <- err
	}()
	errnos, err := sendViaKillChannel(dir, "c1", 62, []int{5, 1})
	if err := <-served; err != nil {
		t.Fatalf("server: %v", err)
	}
	if err != nil || len(errnos) != 2 || errnos[0] != unix.ESRCH || errnos[1] != 0 {
		t.Errorf("sendViaKillChannel = %v, %v; want [ESRCH 0]", errnos, err)
	}
}

// TestGCKillChannels: the channel of a sandbox without a state or lock file goes, the others stay.
func TestGCKillChannels(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"gone", "running", "starting"} {
		req, rep := killChannelPaths(dir, id)
		for _, p := range []string{req, rep} {
			if err := unix.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range []string{"running_sandbox:running.state", "running_sandbox:running.lock", "starting_sandbox:starting.lock", "gone_sandbox:other.state"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gcKillChannels(dir)
	for id, want := range map[string]bool{"gone": false, "running": true, "starting": true} {
		req, rep := killChannelPaths(dir, id)
		for _, p := range []string{req, rep} {
			if got := exists(p); got != want {
				t.Errorf("%s exists = %v, want %v", filepath.Base(p), got, want)
			}
		}
	}
}
