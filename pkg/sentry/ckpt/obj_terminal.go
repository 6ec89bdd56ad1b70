package ckpt

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"reflect"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/devpts"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Terminals (issue 8 item 6, docs/notes-thaw.md "Terminals"). A devpts pair is one object whose
// descriptions are its ends (the master, replicas opened as /dev/pts/N or through /dev/tty),
// grouped by the *devpts.Terminal behind them. Its termios, window size and packet mode live in the
// unexported line discipline and are read through the stateify field route (upstream-gaps.md); the
// only exported setters are the ioctls, which copy through the calling task's memory, so the thaw
// applies them at commit from a scratch page of the thawed process (obj_terminal_thaw.go).

// State type names of devpts's (unexported) file description types.
const (
	devptsMasterFD  = "pkg/sentry/fsimpl/devpts.masterFileDescription"
	devptsReplicaFD = "pkg/sentry/fsimpl/devpts.replicaFileDescription"
)

// terminalOf returns the *devpts.Terminal behind file (read-only, through saved fields) and which
// end file is, or ok false if file is not a pty end.
func terminalOf(file *vfs.FileDescription) (term reflect.Value, end imgfmt.TerminalEnd, ok bool, err error) {
	impl, isState := file.Impl().(stateifyObject)
	if !isState {
		return reflect.Value{}, 0, false, nil
	}
	switch impl.StateTypeName() {
	case devptsMasterFD:
		term, err = stateField(impl, "t")
		end = imgfmt.TerminalMaster
	case devptsReplicaFD:
		var inode reflect.Value
		if inode, err = stateField(impl, "inode"); err == nil {
			term, err = stateFieldOf(inode, stateZeroOfField(impl, "inode"), "t")
		}
		end = imgfmt.TerminalReplica
		if file.Mount().Filesystem().FilesystemType().Name() != devptsFSName {
			end = imgfmt.TerminalDevTTY
		}
	default:
		return reflect.Value{}, 0, false, nil
	}
	if err == nil && (term.Kind() != reflect.Pointer || term.IsNil()) {
		err = fmt.Errorf("devpts file without a terminal (gVisor changed)")
	}
	return term, end, err == nil, err
}

// captureTerminal records a pty end: which end, the terminal's index, termios, window size, packet
// mode, and whether it is the process's controlling terminal. The identity is the terminal.
func captureTerminal(t *kernel.Task, file *vfs.FileDescription) (objectIdentity, imgfmt.ObjectBody, bool, error) {
	term, end, ok, err := terminalOf(file)
	if !ok || err != nil {
		return nil, nil, ok, err
	}
	zero := new(devpts.Terminal)
	st := &imgfmt.TerminalState{Ends: []imgfmt.TerminalEnd{end}, Instance: sentryInstance()}
	o := &imgfmt.TerminalObject{Replica: end != imgfmt.TerminalMaster, Index: imgfmt.TerminalIndexUnknown, State: st}
	if n, err := stateFieldOf(term, zero, "n"); err == nil && n.Kind() == reflect.Uint32 {
		o.Index = uint32(n.Uint())
	} else {
		return nil, nil, false, fmt.Errorf("terminal index: %v", err)
	}
	ld, err := stateFieldOf(term, zero, "ld")
	if err != nil {
		return nil, nil, false, err
	}
	if err := readLineDiscipline(ld, st); err != nil {
		return nil, nil, false, fmt.Errorf("terminal /dev/pts/%d: %w", o.Index, err)
	}
	if st.Queues, err = readTerminalQueues(t, ld); err != nil {
		return nil, nil, false, fmt.Errorf("terminal /dev/pts/%d queues: %w", o.Index, err)
	}
	if stat, err := file.Stat(t, vfs.StatOptions{Mask: linux.STATX_INO}); err == nil {
		st.DevMinor = stat.DevMinor
	}
	captureControllingTTY(t, term, st)
	return term.UnsafePointer(), o, true, nil
}

// readLineDiscipline reads termios, window size and packet mode from ld, a *devpts.lineDiscipline
// (unlocked: the process is stopped; a process outside the image changing the settings at the same
// moment could give a torn read, as a concurrent TCGETS in Linux would not).
func readLineDiscipline(ld reflect.Value, st *imgfmt.TerminalState) error {
	ldZero := stateZeroOfField(new(devpts.Terminal), "ld")
	tio, err := stateFieldOf(ld, ldZero, "termios")
	if err != nil {
		return err
	}
	size, err := stateFieldOf(ld, ldZero, "size")
	if err != nil {
		return err
	}
	packet, err := stateFieldOf(ld, ldZero, "packet")
	if err != nil {
		return err
	}
	if tio.Type() != reflect.TypeOf(linux.KernelTermios{}) || size.Type() != reflect.TypeOf(linux.Winsize{}) || packet.Kind() != reflect.Bool {
		return fmt.Errorf("line discipline fields changed type (gVisor changed)")
	}
	tc := &st.Termios
	tc.IFlag = uint32(tio.FieldByName("InputFlags").Uint())
	tc.OFlag = uint32(tio.FieldByName("OutputFlags").Uint())
	tc.CFlag = uint32(tio.FieldByName("ControlFlags").Uint())
	tc.LFlag = uint32(tio.FieldByName("LocalFlags").Uint())
	tc.Line = uint8(tio.FieldByName("LineDiscipline").Uint())
	cc := tio.FieldByName("ControlCharacters")
	for i := range min(cc.Len(), len(tc.CC)) {
		tc.CC[i] = uint8(cc.Index(i).Uint())
	}
	tc.ISpeed = uint32(tio.FieldByName("InputSpeed").Uint())
	tc.OSpeed = uint32(tio.FieldByName("OutputSpeed").Uint())
	st.Winsize = imgfmt.Winsize{
		Row: uint16(size.FieldByName("Row").Uint()), Col: uint16(size.FieldByName("Col").Uint()),
		XPixel: uint16(size.FieldByName("Xpixel").Uint()), YPixel: uint16(size.FieldByName("Ypixel").Uint()),
	}
	if packet.Bool() {
		st.Flags |= imgfmt.TerminalPacket
	}
	return nil
}

// captureControllingTTY sets the controlling-terminal flags of st if term is the controlling
// terminal of t's process: through which end, whether the process leads its session, and the
// foreground process group.
func captureControllingTTY(t *kernel.Task, term reflect.Value, st *imgfmt.TerminalState) {
	tg := t.ThreadGroup()
	tty := tg.TTY()
	if tty == nil {
		return
	}
	ops, ok := tty.TTYOperations.(*devpts.Terminal)
	if !ok || reflect.ValueOf(ops).Pointer() != term.Pointer() {
		return
	}
	st.Flags |= imgfmt.TerminalControlling
	if m, err := stateFieldOf(term, new(devpts.Terminal), "masterKTTY"); err == nil && m.Pointer() == reflect.ValueOf(tty).Pointer() {
		st.Flags |= imgfmt.TerminalControllingMaster
	}
	pidns := tg.PIDNamespace()
	if int32(pidns.IDOfSession(tg.Session())) == int32(pidns.IDOfThreadGroup(tg)) {
		st.Flags |= imgfmt.TerminalSessionLeader
	}
	if fg, err := tg.ForegroundProcessGroup(tty); err == nil && fg != nil {
		st.FgPGID = int32(pidns.IDOfProcessGroup(fg))
		if fg == tg.ProcessGroup() {
			st.Flags |= imgfmt.TerminalForegroundOwn
		}
	}
}

// sentryInstance names this sandbox in images (TerminalState.Instance): derived from the object
// key secret, so it is random per sentry and the same for every freeze in it.
func sentryInstance() uint64 {
	sum := sha256.Sum256(append(objectKeySecret[:], "sandbox instance"...))
	return binary.LittleEndian.Uint64(sum[:]) | 1
}
