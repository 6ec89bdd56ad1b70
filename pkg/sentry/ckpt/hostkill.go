package ckpt

import (
	"bufio"
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	gerrors "gvisor.dev/gvisor/pkg/errors"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// The sentry's end of the kill channel: checkpoint signals from the host without a process in the
// sandbox and without a control RPC.
//
// `runsc-ckpt kill CID SIGCKPT` used to run a helper program inside the container that called
// kill(2) there: two control RPCs (exec, wait) and a new guest process, beside the program being
// checkpointed. Each control RPC can hold the wake-ups of the running guest's threads for up to
// 10 ms on a 2-CPU host (docs/upstream-gaps.md, "Wake-ups held by the sentry's Go scheduler"),
// and a control-server handler cannot be added without a fork. Instead the `boot` process opens
// two FIFOs in the state directory before gVisor's chroot and seccomp filter (runsc-ckpt/
// kill_fifo.go) and hands them to ServeHostKill. The request FIFO is read through the Go runtime's
// netpoller: a parked read holds no P and enters no blocking syscall, so an idle channel costs
// the guest nothing and a request wakes one goroutine.
//
// A signal from this channel is sent as upstream's `runsc kill` sends one, from outside the
// sandbox: SI_USER with sender pid 0 and uid 0, no permission or ckpt-group check (the host's
// root acts as the sandbox itself). Pids are those of the root PID namespace.

// ServeHostKill serves kill-channel requests read from req and answers on rep until req fails.
// Both must be the FIFOs of the sandbox's state directory opened O_RDWR|O_NONBLOCK, so that req
// never reaches EOF and answering rep never blocks or raises SIGPIPE. It returns at once; the
// work runs on a goroutine of its own.
func ServeHostKill(req, rep *os.File) {
	go serveHostKill(req, rep)
}

// serveHostKill is ServeHostKill's loop.
func serveHostKill(req, rep *os.File) {
	br := bufio.NewReaderSize(req, hostKillMaxLine+1)
	for {
		line, err := readHostKillLine(br)
		if errors.Is(err, errLineTooLong) {
			log.Warningf("ckpt: kill channel: %v", err)
			continue
		}
		if err != nil {
			log.Warningf("ckpt: kill channel closed: %v", err)
			return
		}
		r, err := ParseHostKillRequest(line)
		if err != nil {
			log.Warningf("ckpt: %v", err)
			if r.Nonce != "" {
				answerHostKill(rep, hostKillReply(r.Nonce, 0, unix.EINVAL))
			}
			continue
		}
		handleHostKill(r, func(s string) { answerHostKill(rep, s) })
	}
}

// errLineTooLong is readHostKillLine's error for a line longer than a request can be.
var errLineTooLong = errors.New("request line too long: dropped")

// readHostKillLine returns the next line of br without its newline. A line longer than
// hostKillMaxLine is skipped whole and reported as errLineTooLong.
func readHostKillLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if err == nil {
		return string(line[:len(line)-1]), nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = br.ReadSlice('\n')
	}
	if err != nil {
		return "", err
	}
	return "", errLineTooLong
}

// answerHostKill writes one reply line. The line is shorter than PIPE_BUF, so it is written whole
// or not at all; a reply FIFO that nobody drains (a client gone) fills up, and then answers are
// dropped rather than waited for.
func answerHostKill(rep *os.File, line string) {
	rc, err := rep.SyscallConn()
	if err == nil {
		werr := rc.Write(func(fd uintptr) bool {
			_, err = unix.Write(int(fd), []byte(line))
			return true // Never wait for room.
		})
		if err == nil {
			err = werr
		}
	}
	if err != nil {
		log.Warningf("ckpt: kill channel: answer %q dropped: %v", line, err)
	}
}

// handleHostKill carries out request r, passing each reply line to answer.
func handleHostKill(r HostKillRequest, answer func(string)) {
	k := sentryKernel.Load()
	if k == nil {
		// No guest has made a syscall yet (see wrapNoteKernel): the client falls back to the
		// signal helper, which needs no kernel pointer (its kill(2) runs on a task).
		answer(hostKillReply(r.Nonce, 0, unix.EAGAIN))
		return
	}
	p := CurrentPolicy()
	sig := linux.Signal(r.Signo)
	for _, pid := range r.PIDs {
		target := k.RootPIDNamespace().TaskWithID(kernel.ThreadID(pid))
		if target == nil {
			answer(hostKillReply(r.Nonce, pid, unix.ESRCH))
			answer(hostKillReply(r.Nonce, pid, unix.ESRCH))
			continue
		}
		answer(hostKillReply(r.Nonce, pid, 0))
		answer(hostKillReply(r.Nonce, pid, errnoOf(hostSignal(k, p, target, sig))))
	}
}

// hostSignal sends sig from the host to the process of target: its checkpoint default action when
// sig is a checkpoint signal under p that the process leaves at SIG_DFL, else an ordinary signal,
// as upstream's `runsc kill` sends it.
func hostSignal(k *kernel.Kernel, p Policy, target *kernel.Task, sig linux.Signal) error {
	tg := target.ThreadGroup()
	info := &linux.SignalInfo{Signo: int32(sig), Code: linux.SI_USER}
	if ckptActionOf(p, sig) != noCkpt && takesDefaultCkpt(tg, sig) {
		if err := ckptProcess(p, tg, target, sig, info); err == nil {
			return nil
		}
		// The process exited since it was looked up: the ordinary signal reports that.
	}
	return k.SendExternalSignalThreadGroup(tg, info)
}

// errnoOf returns the errno of err (0 for nil, EIO for an error that carries none).
func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var ge *gerrors.Error
	if errors.As(err, &ge) {
		return unix.Errno(ge.Errno())
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}
