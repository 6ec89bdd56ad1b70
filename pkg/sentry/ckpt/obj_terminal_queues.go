package ckpt

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/devpts"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
)

// Bytes queued in a pseudo-terminal (docs/notes-thaw.md "Terminals", docs/upstream-gaps.md
// "Terminals"). devpts's line discipline has two queues, input (master → replicas) and output
// (replicas → master), each a read buffer of bytes already processed under the termios of the
// moment (ready for the reader once "readable"; in canonical mode an unterminated line is not) and
// a wait buffer of bytes not processed yet. Nothing exported reads them without consuming, and
// reading through the fds would process the wait buffer (echo, signals, a canonical line's
// edits): the freeze reads the saved fields. The thaw writes them back through the fds under a
// neutral termios that copies bytes unchanged, then sets the image's termios, so each queue's read
// buffer, readable state and wait buffer come back as they were.

// terminalQueueZero is a zero devpts queue (unexported type), for checking its saved fields.
func terminalQueueZero() stateifyObject {
	return stateZeroOfField(stateZeroOfField(new(devpts.Terminal), "ld"), "inQueue")
}

// readTerminalQueues reads the two queues of ld, a *devpts.lineDiscipline (unlocked: the frozen
// process is stopped; a process outside the image writing to the terminal at the same moment can
// make the read see a prefix, as for a unix socket's queue).
func readTerminalQueues(t *kernel.Task, ld reflect.Value) (*imgfmt.TerminalQueues, error) {
	ldZero := stateZeroOfField(new(devpts.Terminal), "ld")
	qs := &imgfmt.TerminalQueues{}
	for _, q := range []struct {
		field string
		to    *imgfmt.TerminalQueue
	}{{"inQueue", &qs.Input}, {"outQueue", &qs.Output}} {
		v, err := stateFieldOf(ld, ldZero, q.field)
		if err != nil {
			return nil, err
		}
		if err := readTerminalQueue(v, q.to); err != nil {
			return nil, fmt.Errorf("%s: %w", q.field, err)
		}
		if n := len(q.to.Read); n > imgfmt.TerminalReadMax {
			return nil, fmt.Errorf("%s: %d processed bytes (gVisor changed: at most %d expected)", q.field, n, imgfmt.TerminalReadMax)
		}
		if n := len(q.to.Wait); n > imgfmt.TerminalWaitMax {
			t.Warningf("ckpt: freeze: terminal %s holds %d unprocessed bytes: the last %d are dropped", q.field, n, n-imgfmt.TerminalWaitMax)
			q.to.Wait = q.to.Wait[:imgfmt.TerminalWaitMax]
		}
	}
	return qs, nil
}

// readTerminalQueue copies one devpts queue (a struct value) into to.
func readTerminalQueue(q reflect.Value, to *imgfmt.TerminalQueue) error {
	bytesOf := func(v reflect.Value) ([]byte, error) {
		if v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.Uint8 {
			return nil, fmt.Errorf("a queue buffer is a %s (gVisor changed)", v.Type())
		}
		if v.Len() == 0 {
			return nil, nil
		}
		return bytes.Clone(v.Bytes()), nil
	}
	read, err := stateSubfield(q, "readBuf", reflect.Slice)
	if err != nil {
		return err
	}
	if to.Read, err = bytesOf(read); err != nil {
		return err
	}
	wait, err := stateSubfield(q, "waitBuf", reflect.Slice)
	if err != nil {
		return err
	}
	for i := range wait.Len() {
		b, err := bytesOf(wait.Index(i))
		if err != nil {
			return err
		}
		to.Wait = append(to.Wait, b...)
		if len(to.Wait) > imgfmt.TerminalWaitMax {
			break // The caller drops the rest.
		}
	}
	readable, err := stateSubfield(q, "readable", reflect.Bool)
	if err != nil {
		return err
	}
	to.Readable = readable.Bool()
	return nil
}

// kernelTermios converts an image's termios.
func kernelTermios(tc imgfmt.Termios) linux.KernelTermios {
	return linux.KernelTermios{
		InputFlags: tc.IFlag, OutputFlags: tc.OFlag, ControlFlags: tc.CFlag, LocalFlags: tc.LFlag,
		LineDiscipline: tc.Line, ControlCharacters: tc.CC, InputSpeed: tc.ISpeed, OutputSpeed: tc.OSpeed,
	}
}

// terminalRefill returns the steps that give a fresh pair's line discipline the image's termios
// and queues: master is the pair's master (it writes the input queue), replica one of its
// replicas (it writes the output queue; nil if the output queue is empty). Used in place of a
// plain TCSETS2 by applyTerminalState.
//
// Under the neutral termios t0 (no input translation, no signals, no echo, no output processing,
// every control character disabled; canonical as the image's is, IUTF8 kept so that characters
// are counted alike) a write lands unchanged in the read buffer. In canonical mode only a newline
// ends a line then; a line the image ended otherwise (its VEOL or VEOL2, or its end-of-file
// character, which is never stored) is made readable by an end-of-file character enabled for that
// one write. A read buffer with newlines inside (written in non-canonical mode, then switched) is
// written non-canonically and the mode switched after, which gVisor does without moving bytes. The
// image's termios is then set (its ICANON equals t0's: no bytes move), and the wait buffers are
// written under it: they stay unprocessed exactly when they did at the freeze (a canonical line
// waiting to be read, or a full read buffer).
func terminalRefill(master, replica *vfs.FileDescription, s *imgfmt.TerminalState) []ioctlCall {
	q := s.Queues
	want := kernelTermios(s.Termios)
	canon := want.LEnabled(linux.ICANON)
	in := q.Input
	innerNewline := len(in.Read) > 1 && bytes.IndexByte(in.Read[:len(in.Read)-1], '\n') >= 0
	canonWrite := canon && !(in.Readable && innerNewline)
	t0 := want
	t0.InputFlags &= linux.IUTF8
	t0.OutputFlags = 0
	t0.LocalFlags = 0
	if canonWrite {
		t0.LocalFlags = linux.ICANON
	}
	t0.ControlCharacters = [linux.NumControlCharacters]uint8{}
	calls := []ioctlCall{{name: "TCSETS2 (refill)", cmd: linux.TCSETS2, arg: marshalled(&t0)}}
	calls = append(calls, terminalWrite("output", replica, q.Output.Read), terminalWrite("input", master, in.Read))
	switch {
	case canon && !canonWrite:
		t0.LocalFlags = linux.ICANON
		calls = append(calls, ioctlCall{name: "TCSETS2 (canonical)", cmd: linux.TCSETS2, arg: marshalled(&t0)})
	case canon && in.Readable && (len(in.Read) == 0 || in.Read[len(in.Read)-1] != '\n'):
		t0.ControlCharacters[linux.VEOF] = 4
		calls = append(calls, ioctlCall{name: "TCSETS2 (end of line)", cmd: linux.TCSETS2, arg: marshalled(&t0)},
			terminalWrite("end of line", master, []byte{4}))
	}
	calls = append(calls, ioctlCall{name: "TCSETS2", cmd: linux.TCSETS2, arg: marshalled(&want)})
	return append(calls, terminalWrite("output wait", replica, q.Output.Wait), terminalWrite("input wait", master, in.Wait))
}

// terminalWrite is a step that writes b to f (a pty end), all of it unless the queue is full
// (logged: the rest is lost).
func terminalWrite(what string, f *vfs.FileDescription, b []byte) ioctlCall {
	return ioctlCall{name: "write " + what, run: func(t *kernel.Task) error {
		if len(b) == 0 {
			return nil
		}
		if f == nil {
			return fmt.Errorf("no end to write %d bytes through", len(b))
		}
		for done := 0; done < len(b); {
			n, err := f.Write(t, usermem.BytesIOSequence(b[done:]), vfs.WriteOptions{})
			done += int(n)
			if err != nil || n == 0 {
				return fmt.Errorf("%d of %d bytes written: %v", done, len(b), err)
			}
		}
		return nil
	}}
}
