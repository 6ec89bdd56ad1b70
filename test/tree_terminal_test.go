package test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// terminalScript is the entrypoint of the terminal test's container: it says ready, then counts
// forever; each round waits up to 1 s for a line on the terminal (`read -t`, which polls it) and
// prints "tick N" if none came, else "got N LINE tty=yes|no size=ROWS COLS" (whether stdin is a
// terminal, and its window size).
const terminalScript = `echo ready; i=0; while :; do i=$((i+1)); ` +
	`if read -t 1 l; then echo "got $i $l tty=$([ -t 0 ] && echo yes || echo no) size=$(stty size)"; ` +
	`else echo "tick $i"; fi; done`

// consoleSocket is the engine's end of --console-socket: a unix socket on which the runtime sends
// the master of the container's new pty (SCM_RIGHTS).
type consoleSocket struct {
	path    string
	masters chan *os.File
	errs    chan error
}

// newConsoleSocket listens on a new socket under the system's temporary directory (a socket's
// path is limited to 107 bytes, which a test directory may exceed) and receives every master sent
// on it.
func newConsoleSocket(t *testing.T) *consoleSocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "rc-console-")
	if err != nil {
		t.Fatal(err)
	}
	cs := &consoleSocket{path: filepath.Join(dir, "sock"), masters: make(chan *os.File, 4), errs: make(chan error, 4)}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: cs.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); os.RemoveAll(dir) })
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			m, err := receiveMaster(c)
			c.Close()
			if err != nil {
				cs.errs <- err
				continue
			}
			cs.masters <- m
		}
	}()
	return cs
}

// receiveMaster reads one message with one fd from c.
func receiveMaster(c *net.UnixConn) (*os.File, error) {
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("reading the console message: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("console message without one control message (%d bytes): %v", oobn, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("console message without one fd: %v %v", fds, err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// master returns the master the runtime sent since the last call. A command that sends it
// (run, restore --detach) has done so before it returns, so the wait is only a bound.
func (cs *consoleSocket) master(t *testing.T) *terminal {
	t.Helper()
	select {
	case m := <-cs.masters:
		return newTerminal(t, m)
	case err := <-cs.errs:
		t.Fatalf("console socket %s: %v", cs.path, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("no pty master was sent on the console socket %s", cs.path)
	}
	return nil
}

// terminal is a pty master the test holds, with everything read from it so far.
type terminal struct {
	f  *os.File
	mu sync.Mutex
	// +checklocks:mu
	out  strings.Builder
	done chan struct{} // Closed when reading fails: every replica is closed (EIO).
}

// newTerminal starts reading m.
func newTerminal(t *testing.T, m *os.File) *terminal {
	term := &terminal{f: m, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { m.Close() })
	return term
}

// output returns what the terminal has shown so far.
func (term *terminal) output() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// typeLine sets the window size and writes line and a newline to the master, as a user would type.
func (term *terminal) typeLine(t *testing.T, rows, cols uint16, line string) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(term.f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatalf("setting the window size: %v", err)
	}
	if _, err := term.f.WriteString(line + "\n"); err != nil {
		t.Fatalf("typing %q: %v", line, err)
	}
}

// drain waits until every replica of the terminal is closed, so that output() holds everything
// the container wrote to it.
func (term *terminal) drain(t *testing.T) {
	t.Helper()
	select {
	case <-term.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the old terminal is still open; it showed:\n%s", term.output())
	}
}

// terminalLine is one line of terminalScript's output: "tick N" or "got N ...".
var terminalLine = regexp.MustCompile(`^(tick|got) ([0-9]+)(.*)$`)

// counts returns the round numbers of the script's lines in out (the terminal's echo of typed
// lines is not one of them) and its "got" lines.
func counts(out string) (ns []int, got []string) {
	for _, l := range strings.Split(out, "\n") {
		m := terminalLine.FindStringSubmatch(strings.TrimRight(l, "\r"))
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		ns = append(ns, n)
		if m[1] == "got" {
			got = append(got, strings.TrimSpace(m[0]))
		}
	}
	return ns, got
}

// runTerminalContainer runs argv as a detached busybox container with a terminal (env: PATH and
// term, the TERM=... setting) on platform p, as an engine does (`run --console-socket`), and
// returns it with the pty master the runtime sent.
func runTerminalContainer(t *testing.T, p, term string, argv ...string) (*harness.Container, *terminal) {
	t.Helper()
	a := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Terminal: true,
		Args: argv, Env: []string{"PATH=/bin:/usr/bin", term}})
	cs := newConsoleSocket(t)
	a.MustRun(t, "run", "--detach", "--bundle", a.Bundle, "--console-socket", cs.path, a.ID)
	return a, cs.master(t)
}

// restoreTerminalContainer restores the checkpoint dir of a terminal container from bundle as a
// new detached container on platform p, with restore's extra flags and a new console socket, and
// returns it with the new pty master.
func restoreTerminalContainer(t *testing.T, p, bundle, dir string, flags ...string) (*harness.Container, *terminal) {
	t.Helper()
	b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{"/nonexistent-never-run"}})
	cs := newConsoleSocket(t)
	args := append(append([]string{"restore"}, flags...), "--image-path", dir, "--bundle", bundle, "--console-socket", cs.path, "--detach", b.ID)
	b.MustRun(t, args...)
	return b, cs.master(t)
}

// TestTreeTerminalOCI: a busybox container started with a terminal ("terminal": true, the runtime
// given --console-socket, as `docker run -t` does) counts on its terminal and answers the lines
// typed into it (terminalScript). It is checkpointed with --format=elf, deleted, and restored with
// a new console socket, with the clock continued (the template route) and then, checkpointed again,
// with --restore-clock=reset: each restore sends a new pty master on its socket, the count goes on
// there from where the old terminal left it (one sequence without a gap or a repeat across the
// terminals, no second "ready": nothing restarted), and a line typed into the new master reaches
// the restored shell, whose stdin is a terminal ([ -t 0 ]) with the window size just set on the new
// master. Before, the ELF restore did not pass --console-socket on: no master was ever sent, and
// the tree got the restore command's stdio. The template route's own pty matters too: with
// /dev/null as the template's stdin the restored `read -t` never woke (the restored host file
// was not pollable), and the count stopped.
func TestTreeTerminalOCI(t *testing.T) {
	needBusybox(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a, term := runTerminalContainer(t, p, "TERM=xterm", busybox, "sh", "-c", terminalScript)
		waitFor(t, 60*time.Second, func() bool { return strings.Contains(term.output(), "tick 2") })
		term.typeLine(t, 24, 80, "before")
		waitFor(t, 60*time.Second, func() bool { return strings.Contains(term.output(), " before tty=yes size=24 80") })
		var all string // Everything the script wrote, on every terminal in turn.
		c := a
		for _, route := range []struct {
			name  string
			flags []string
		}{{"continue", nil}, {"reset", []string{"--restore-clock=reset"}}} {
			dir := filepath.Join(h.NewDir(t), "ckpt")
			c.MustRun(t, "checkpoint", "--format=elf", "--image-path", dir, c.ID)
			c.Delete(t, true)
			term.drain(t)
			all += term.output()
			before, _ := counts(term.output())
			if len(before) == 0 {
				t.Fatalf("%s: no count on the terminal before the checkpoint:\n%s", route.name, term.output())
			}
			last := before[len(before)-1]

			var b *harness.Container
			b, term = restoreTerminalContainer(t, p, a.Bundle, dir, route.flags...)
			if !pollUntil(60*time.Second, func() bool { n, _ := counts(term.output()); return len(n) >= 2 }) {
				t.Fatalf("%s: the count did not go on on the new terminal (last before: %d); it shows:\n%s", route.name, last, term.output())
			}
			word := "after-" + route.name
			term.typeLine(t, 33, 99, word)
			want := fmt.Sprintf(" %s tty=yes size=33 99", word)
			if !pollUntil(60*time.Second, func() bool { return strings.Contains(term.output(), want) }) {
				t.Fatalf("%s: the line typed into the new master got no answer %q; the terminal shows:\n%s", route.name, want, term.output())
			}
			out := term.output()
			if strings.Contains(out, "ready") {
				t.Errorf("%s: the script started over on the new terminal:\n%s", route.name, out)
			}
			after, got := counts(out)
			t.Logf("%s: %s: last count before %d, after: %v %q", p, route.name, last, after, got)
			if after[0] != last+1 {
				t.Errorf("%s: the count went from %d on the old terminal to %d on the new one:\n%s", route.name, last, after[0], out)
			}
			c = b
		}
		c.Delete(t, true)
		term.drain(t)
		all += term.output()
		ns, _ := counts(all)
		for i := 1; i < len(ns); i++ {
			if ns[i] != ns[i-1]+1 {
				t.Errorf("the count is not one sequence across the terminals: %v", ns)
				break
			}
		}
	})
}

// TestTreeTerminalForegroundOCI: an interactive shell (`sh -i` as the container's init, with a
// terminal) runs `cat` in the foreground: cat is its own process group, the terminal's foreground
// one, and echoes what is typed. The checkpoint records that group (stdio_foreground_pgid: cat's
// pid); after a restore with the clock continued, and after another with it reset, a line typed
// into the new master is still echoed by cat. Before the group was recorded, the restored
// terminal's foreground group was the init's: cat stopped at its next read (`Stopped (tty
// input)`) and the shell took the line for a command. At the end ^D ends cat and the shell, in
// the foreground again, runs a command.
func TestTreeTerminalForegroundOCI(t *testing.T) {
	needBusybox(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a, term := runTerminalContainer(t, p, "TERM=dumb", busybox, "sh", "-i")
		waitFor(t, 60*time.Second, func() bool { return strings.Contains(term.output(), "# ") })
		term.typeLine(t, 24, 80, "cat")
		// A line typed before cat runs would be read by the shell's line editor (no echo by the
		// terminal, which is then raw).
		waitFor(t, 60*time.Second, func() bool { return a.Exec(t, busybox, "pidof", "cat").ExitCode == 0 })
		term.typeLine(t, 24, 80, "one")
		if !pollUntil(60*time.Second, func() bool { return strings.Contains(term.output(), "one\r\none\r\n") }) {
			t.Fatalf("cat did not echo a line before the checkpoint; the terminal shows:\n%s", term.output())
		}

		c := a
		for _, route := range []struct {
			name, word string
			flags      []string
		}{{"continue", "two", nil}, {"reset", "three", []string{"--restore-clock=reset"}}} {
			dir := filepath.Join(h.NewDir(t), "ckpt")
			c.MustRun(t, "checkpoint", "--format=elf", "--image-path", dir, c.ID)
			c.Delete(t, true)
			m, err := treefmt.VerifyDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var cat int32
			for _, pr := range m.Processes {
				if pr.Comm == "cat" {
					cat = pr.PID
				}
			}
			if cat == 0 || m.StdioForeground != cat {
				t.Errorf("%s: the manifest records the terminal's foreground group %d, cat is pid %d: %+v", route.name, m.StdioForeground, cat, m.Processes)
			}

			var b *harness.Container
			b, term = restoreTerminalContainer(t, p, a.Bundle, dir, route.flags...)
			term.typeLine(t, 24, 80, route.word)
			want := route.word + "\r\n" + route.word + "\r\n"
			if !pollUntil(60*time.Second, func() bool { return strings.Contains(term.output(), want) }) {
				t.Fatalf("%s: cat did not echo the line typed into the new master (%q); the terminal shows:\n%s", route.name, route.word, term.output())
			}
			if out := term.output(); strings.Contains(out, "Stopped") {
				t.Errorf("%s: a job stopped:\n%s", route.name, out)
			}
			c = b
		}
		if _, err := term.f.WriteString("\x04"); err != nil {
			t.Fatal(err)
		}
		term.typeLine(t, 24, 80, "echo back-$((6*7))")
		if !pollUntil(60*time.Second, func() bool { return strings.Contains(term.output(), "back-42") }) {
			t.Fatalf("the shell did not take the terminal back after cat; the terminal shows:\n%s", term.output())
		}
		t.Logf("%s: the last terminal shows %q", p, term.output())
		c.Delete(t, true)
	})
}
