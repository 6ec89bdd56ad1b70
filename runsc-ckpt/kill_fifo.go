package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"
)

// The kill channel: how `kill CID SIGCKPT` reaches the sentry without a process in the sandbox
// and without a control RPC (the sentry's side and the protocol: pkg/sentry/ckpt/hostkill.go,
// hostkill_proto.go; docs/notes-sigckpt.md, "The kill channel").
//
// The `boot` process makes two FIFOs in runsc's state directory, next to the sandbox's state
// file — runsc-ckpt-kill_SANDBOX.req and .rep, mode 0600 — before runsc's chroot and seccomp
// filter, opens both O_RDWR|O_NONBLOCK and hands them to the sentry. boot may re-execute itself
// (to drop capabilities or become nobody) after its chroot, when the state directory is out of
// reach: the descriptors are opened without close-on-exec and named in the environment
// (killChannelEnv, with boot's pid, which an exec keeps), and the re-executed boot takes them
// from there. `kill` falls back to the signal helper (kill.go) when the sandbox has no channel: one
// started by an older runsc-ckpt, one whose FIFOs could not be made, or one whose sentry has
// not seen a guest syscall yet.

const (
	// killChannelPrefix starts the FIFOs' names. '_' cannot occur in a container id, so the name
	// cannot be mistaken for runsc's own files.
	killChannelPrefix = "runsc-ckpt-kill_"
	// killChannelEnv names boot's channel descriptors across its re-exec: "PID:REQFD:REPFD".
	killChannelEnv = "RUNSC_CKPT_KILL_CHANNEL"
	// killChannelTimeout bounds how long kill waits for the sentry's answer. The sentry answers
	// each target once the signal is queued (milliseconds); only a sentry that is wedged takes
	// longer.
	killChannelTimeout = 60 * time.Second
)

// errNoKillChannel means the sandbox has no working kill channel: kill uses the signal helper.
var errNoKillChannel = errors.New("no kill channel")

// validContainerID is runsc's pattern of container ids (container.validateID).
var validContainerID = regexp.MustCompile(`^[\w+\-.]+$`)

// killChannelPaths returns the request and reply FIFOs of sandbox id under rootDir.
func killChannelPaths(rootDir, id string) (req, rep string) {
	base := filepath.Join(rootDir, killChannelPrefix+id)
	return base + ".req", base + ".rep"
}

// removeKillChannel removes the FIFOs of sandbox id, if any.
func removeKillChannel(rootDir, id string) {
	if !validContainerID.MatchString(id) {
		return
	}
	req, rep := killChannelPaths(rootDir, id)
	for _, p := range []string{req, rep} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "runsc-ckpt: removing %s: %v\n", p, err)
		}
	}
}

// gcKillChannels removes the FIFOs of every sandbox under rootDir that is gone: whose root
// container has neither a state file nor a lock file. runsc makes the lock file before it starts
// the sandbox (container.New) and removes both when it destroys it, so a sandbox being created
// keeps its channel. Called after create, run, do and delete; `run` and `do` without --detach
// destroy their sandbox themselves, and `do` names it only inside upstream's code.
func gcKillChannels(rootDir string) {
	reqs, err := filepath.Glob(filepath.Join(rootDir, killChannelPrefix+"*.req"))
	if err != nil {
		return
	}
	for _, req := range reqs {
		id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(req), killChannelPrefix), ".req")
		if !validContainerID.MatchString(id) {
			continue
		}
		base := runscStateBase(rootDir, id)
		if exists(base+".state") || exists(base+".lock") {
			continue
		}
		removeKillChannel(rootDir, id)
	}
}

// exists reports whether path names a file (of any kind).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// startKillChannel is called in the `boot` process before runsc's own code (bootArgs: its
// arguments after "boot", the sandbox id last; rootDir: --root). It opens the channel or takes it
// over from the boot process that re-executed this one, and starts the sentry's server on it. It
// is best effort: without a channel, kill uses the signal helper; the reason is returned for the
// log.
func startKillChannel(rootDir string, bootArgs []string) error {
	req, rep, err := killChannelFDs(rootDir, bootArgs)
	if err != nil {
		return err
	}
	reqF, repF := os.NewFile(uintptr(req), "kill channel requests"), os.NewFile(uintptr(rep), "kill channel replies")
	ckpt.ServeHostKill(reqF, repF)
	return nil
}

// killChannelFDs returns the channel's descriptors: those named by killChannelEnv for this very
// process (a re-executed boot), else newly made FIFOs, which it then names in the environment.
func killChannelFDs(rootDir string, bootArgs []string) (req, rep int, err error) {
	if v, ok := os.LookupEnv(killChannelEnv); ok {
		if req, rep, ok := inheritedKillChannel(v); ok {
			return req, rep, nil
		}
	}
	if len(bootArgs) == 0 || !validContainerID.MatchString(bootArgs[len(bootArgs)-1]) || rootDir == "" {
		return -1, -1, fmt.Errorf("kill channel: no sandbox id or --root in boot's arguments")
	}
	reqPath, repPath := killChannelPaths(rootDir, bootArgs[len(bootArgs)-1])
	if req, err = openKillFIFO(reqPath); err != nil {
		return -1, -1, err
	}
	if rep, err = openKillFIFO(repPath); err != nil {
		unix.Close(req)
		os.Remove(reqPath)
		return -1, -1, err
	}
	if err := os.Setenv(killChannelEnv, fmt.Sprintf("%d:%d:%d", os.Getpid(), req, rep)); err != nil {
		return -1, -1, fmt.Errorf("kill channel: %w", err)
	}
	return req, rep, nil
}

// inheritedKillChannel parses killChannelEnv's value v and checks that it names two FIFOs of this
// process.
func inheritedKillChannel(v string) (req, rep int, ok bool) {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return -1, -1, false
	}
	var n [3]int
	for i, p := range parts {
		var err error
		if n[i], err = strconv.Atoi(p); err != nil || n[i] < 0 {
			return -1, -1, false
		}
	}
	if n[0] != os.Getpid() {
		return -1, -1, false // Inherited from another process, not boot's own re-exec.
	}
	for _, fd := range n[1:] {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			return -1, -1, false
		}
	}
	return n[1], n[2], true
}

// openKillFIFO makes a new FIFO at path (replacing a stale one of an earlier sandbox of the same
// id) and opens it O_RDWR|O_NONBLOCK, without close-on-exec (see above).
func openKillFIFO(path string) (int, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return -1, fmt.Errorf("kill channel: %w", err)
	}
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return -1, fmt.Errorf("kill channel: mkfifo %s: %w", path, err)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		os.Remove(path)
		return -1, fmt.Errorf("kill channel: opening %s: %w", path, err)
	}
	return fd, nil
}

// sendViaKillChannel sends sig to targets (pids of the sandbox's root PID namespace, in order)
// through the kill channel of sandbox id and returns each target's errno. errNoKillChannel (and
// nothing sent) means the sandbox has no working channel.
func sendViaKillChannel(rootDir, id string, sig linux.Signal, targets []int) ([]unix.Errno, error) {
	reqPath, repPath := killChannelPaths(rootDir, id)
	// O_NONBLOCK: ENXIO at once if no process has the FIFO open for reading (no sentry).
	req, err := openOwnFIFO(reqPath, unix.O_WRONLY)
	if err != nil {
		return nil, err
	}
	defer req.Close()
	// One client at a time reads the replies.
	if err := unix.Flock(int(req.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking %s: %w", reqPath, err)
	}
	rep, err := openOwnFIFO(repPath, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer rep.Close()
	nonceBytes := make([]byte, 8)
	if _, err := rand.Read(nonceBytes); err != nil {
		return nil, fmt.Errorf("kill channel: %w", err)
	}
	nonce := hex.EncodeToString(nonceBytes)

	var results []targetResult
	deadline := time.Now().Add(killChannelTimeout)
	if err := rep.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("kill channel: %w", err)
	}
	br := bufio.NewReaderSize(rep, 4096)
	for start := 0; start < len(targets); start += ckpt.HostKillMaxTargets {
		chunk := targets[start:min(start+ckpt.HostKillMaxTargets, len(targets))]
		line := ckpt.HostKillRequest{Nonce: nonce, Signo: int(sig), PIDs: chunk}.Line()
		if _, err := req.Write([]byte(line)); err != nil {
			if start == 0 {
				return nil, fmt.Errorf("%w: writing to %s: %v", errNoKillChannel, reqPath, err)
			}
			return nil, fmt.Errorf("kill channel: writing to %s: %w", reqPath, err)
		}
		got, err := readKillReplies(br, nonce, 2*len(chunk))
		results = append(results, got...)
		if errors.Is(err, io.EOF) {
			// The sentry is gone: what it answered before stands (SIGCKPTEXIT to the sandbox's
			// init, see hostkill_proto.go).
			break
		}
		if errors.Is(err, errNoKillChannel) && start > 0 {
			err = fmt.Errorf("kill channel: refused after %d targets were signalled", start)
		}
		if err != nil {
			return nil, err
		}
	}
	errnos, err := matchTargetResults(results, targets)
	if err != nil {
		return nil, fmt.Errorf("kill channel: %w", err)
	}
	return errnos, nil
}

// readKillReplies reads the reply lines of request nonce from br until it has n of them, and
// returns them in order. Lines of other requests (late answers to a client that gave
// up) are skipped. A refusal of the whole request is errNoKillChannel for EAGAIN (the sentry is
// not ready: the helper can do it) and an error otherwise; EOF (the sentry exited) comes with the
// lines read so far.
func readKillReplies(br *bufio.Reader, nonce string, n int) ([]targetResult, error) {
	var out []targetResult
	for len(out) < n {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return out, fmt.Errorf("kill channel: no answer from the sandbox within %v", killChannelTimeout)
			}
			return out, err
		}
		l, err := ckpt.ParseHostKillReplyLine(strings.TrimSuffix(line, "\n"))
		if err != nil {
			return out, err
		}
		if l.Nonce != nonce {
			continue
		}
		if l.Refused {
			if l.Errno == unix.EAGAIN {
				return nil, errNoKillChannel
			}
			return nil, fmt.Errorf("kill channel: the sandbox refused the request: %v", l.Errno)
		}
		out = append(out, targetResult{pid: l.PID, errno: l.Errno})
	}
	return out, nil
}

// openOwnFIFO opens the FIFO at path with flags|O_NONBLOCK|O_CLOEXEC as a pollable file, after
// checking that it is a FIFO owned by this user (the state directory may be shared with others'
// files). A missing FIFO, or a request FIFO nobody reads (ENXIO), is errNoKillChannel.
func openOwnFIFO(path string, flags int) (*os.File, error) {
	fd, err := unix.Open(path, flags|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) {
			return nil, fmt.Errorf("%w: %s: %v", errNoKillChannel, path, err)
		}
		return nil, fmt.Errorf("kill channel: opening %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Uid != uint32(os.Geteuid()) {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s is not a FIFO of this user", errNoKillChannel, path)
	}
	return os.NewFile(uintptr(fd), path), nil
}
