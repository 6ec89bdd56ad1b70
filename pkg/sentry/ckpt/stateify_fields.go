package ckpt

import (
	"fmt"
	"reflect"
	"slices"

	"gvisor.dev/gvisor/pkg/atomicbitops"
	"gvisor.dev/gvisor/pkg/sentry/checkpoint"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/devpts"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/eventfd"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/timerfd"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/ipc"
	"gvisor.dev/gvisor/pkg/sentry/kernel/msgqueue"
	"gvisor.dev/gvisor/pkg/sentry/kernel/semaphore"
	"gvisor.dev/gvisor/pkg/sentry/ktime"
	"gvisor.dev/gvisor/pkg/sentry/mm"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Some object state has no exported getter in gVisor (an eventfd's counter, an epoll instance's
// interest list, ...). Every such struct is stateify-savable, so its generated, exported
// StateFields method names the fields that make up its saved state. stateField reads one of those
// fields through reflection, read-only: reflect can read unexported fields of basic kinds (and
// follow unexported pointers) but never write them or call their methods, so nothing in the sentry
// can be changed this way. The names are checked against StateFields at every call, and
// TestStateFieldsUsed checks every field this package reads (stateFieldsUsed), so a gVisor bump
// that renames or retypes one fails the unit tests instead of misreading state.
// docs/upstream-gaps.md lists the fields and why each is needed.

// stateifyObject is a stateify-savable gVisor struct.
type stateifyObject interface {
	StateTypeName() string
	StateFields() []string
}

// stateField returns field name of *obj. obj must be a non-nil pointer to a struct whose
// StateFields lists name.
func stateField(obj stateifyObject, name string) (reflect.Value, error) {
	if !slices.Contains(obj.StateFields(), name) {
		return reflect.Value{}, fmt.Errorf("%s has no saved field %q (gVisor changed: see docs/upstream-gaps.md)", obj.StateTypeName(), name)
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("%s: not a pointer to a struct", obj.StateTypeName())
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() {
		return reflect.Value{}, fmt.Errorf("%s lists %q in StateFields but has no such field", obj.StateTypeName(), name)
	}
	return f, nil
}

// stateUint reads an unsigned integer field of obj (see stateField).
func stateUint(obj stateifyObject, name string) (uint64, error) {
	f, err := stateField(obj, name)
	if err != nil {
		return 0, err
	}
	switch f.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return f.Uint(), nil
	}
	return 0, fmt.Errorf("%s.%s is a %s, want an unsigned integer (gVisor changed)", obj.StateTypeName(), name, f.Kind())
}

// stateInt reads a signed integer field of obj (see stateField).
func stateInt(obj stateifyObject, name string) (int64, error) {
	f, err := stateField(obj, name)
	if err != nil {
		return 0, err
	}
	switch f.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return f.Int(), nil
	}
	return 0, fmt.Errorf("%s.%s is a %s, want a signed integer (gVisor changed)", obj.StateTypeName(), name, f.Kind())
}

// stateBool reads a bool field of obj (see stateField).
func stateBool(obj stateifyObject, name string) (bool, error) {
	f, err := stateField(obj, name)
	if err != nil {
		return false, err
	}
	if f.Kind() != reflect.Bool {
		return false, fmt.Errorf("%s.%s is a %s, want a bool (gVisor changed)", obj.StateTypeName(), name, f.Kind())
	}
	return f.Bool(), nil
}

// stateFieldUse is one field this package reads with stateField: the struct (a zero value of the
// pointer type), the field and the kind it must have.
type stateFieldUse struct {
	obj   stateifyObject
	field string
	kind  reflect.Kind
}

// stateFieldsUsed lists every field read through stateField, for TestStateFieldsUsed. Add a line
// with each new use.
func stateFieldsUsed() []stateFieldUse {
	epollKey, epollValue := epollInterestTypes()
	pendSignals, pendQueue, pendList, pendEntry, pendLink := pendingSignalTypes()
	vmaSet, vmaNode, vmaValue := vmaTypes()
	return []stateFieldUse{
		{new(eventfd.EventFileDescription), "val", reflect.Uint64},
		{new(eventfd.EventFileDescription), "semMode", reflect.Bool},
		{new(eventfd.EventFileDescription), "hostfd", reflect.Int},
		// The container's stdio (freeze_tree_stdio.go).
		{hostInodeType(), "restorable", reflect.Bool},
		{hostInodeType(), "restoreKey", reflect.Struct},
		{new(checkpoint.ResourceID), "Path", reflect.String},
		{new(vfs.EpollInstance), "interest", reflect.Map},
		{epollKey, "file", reflect.Pointer},
		{epollKey, "num", reflect.Int32},
		{epollValue, "mask", reflect.Uint32},
		{epollValue, "userData", reflect.Array},
		{new(timerfd.TimerFileDescription), "val", reflect.Struct},
		{timerFDValType(), "value", reflect.Uint64},
		// POSIX timers (obj_posixtimer.go).
		{new(kernel.ThreadGroup), "timers", reflect.Map},
		{new(kernel.ThreadGroup), "nextTimerID", reflect.Int32},
		{new(kernel.IntervalTimer), "timer", reflect.Interface},
		{new(kernel.IntervalTimer), "target", reflect.Pointer},
		{new(kernel.IntervalTimer), "group", reflect.Bool},
		{new(kernel.IntervalTimer), "signo", reflect.Int},
		{new(kernel.IntervalTimer), "sigval", reflect.Uint64},
		{new(ktime.SampledTimer), "clock", reflect.Interface},
		{new(ktime.SyntheticTimer), "clock", reflect.Pointer},
		// The signal of a group stop (freeze_tree_stopped.go).
		{new(kernel.ThreadGroup), "groupStopSignal", reflect.Int},
		// Pending signals (obj_pendingsig.go).
		{new(kernel.ThreadGroup), "pendingSignals", reflect.Struct},
		{new(kernel.Task), "pendingSignals", reflect.Struct},
		{pendSignals, "signals", reflect.Array},
		{pendQueue, "pendingSignalList", reflect.Struct},
		{pendList, "head", reflect.Pointer},
		{pendEntry, "pendingSignalEntry", reflect.Struct},
		{pendEntry, "SignalInfo", reflect.Pointer},
		{pendEntry, "timer", reflect.Pointer},
		{pendLink, "next", reflect.Pointer},
		{new(kernel.IntervalTimer), "sigorphan", reflect.Bool},
		{new(kernel.IntervalTimer), "overrunCur", reflect.Uint64},
		// SysV message queues and IPC ids (obj_sysv.go).
		{new(msgqueue.Registry), "reg", reflect.Pointer},
		{new(semaphore.Registry), "reg", reflect.Pointer},
		{new(ipc.Registry), "objects", reflect.Map},
		{new(ipc.Registry), "lastIDUsed", reflect.Int32},
		{new(msgqueue.Queue), "messages", reflect.Struct},
		{stateZeroOfField(new(msgqueue.Queue), "messages"), "head", reflect.Pointer},
		{new(msgqueue.Message), "Type", reflect.Int64},
		{new(msgqueue.Message), "Text", reflect.Slice},
		{new(msgqueue.Message), "msgEntry", reflect.Struct},
		{stateZeroOfField(new(msgqueue.Message), "msgEntry"), "next", reflect.Pointer},
		// Terminals (obj_terminal.go). The fields of devpts's unexported file descriptions
		// (masterFileDescription.t, replicaFileDescription.inode, replicaInode.t) have no zero value
		// to check here: TestObjTerminal fails if they change.
		{new(devpts.Terminal), "n", reflect.Uint32},
		{new(devpts.Terminal), "ld", reflect.Pointer},
		{new(devpts.Terminal), "masterKTTY", reflect.Pointer},
		{stateZeroOfField(new(devpts.Terminal), "ld"), "termios", reflect.Struct},
		{stateZeroOfField(new(devpts.Terminal), "ld"), "size", reflect.Struct},
		{stateZeroOfField(new(devpts.Terminal), "ld"), "packet", reflect.Bool},
		{stateZeroOfField(new(devpts.Terminal), "ld"), "inQueue", reflect.Struct},
		{stateZeroOfField(new(devpts.Terminal), "ld"), "outQueue", reflect.Struct},
		{terminalQueueZero(), "readBuf", reflect.Slice},
		{terminalQueueZero(), "waitBuf", reflect.Slice},
		{terminalQueueZero(), "readable", reflect.Bool},
		// inotify watches (obj_inotify.go; TestInotifyProbe runs the whole route).
		{new(vfs.Inotify), "watches", reflect.Map},
		{new(vfs.Inotify), "nextWatchMinusOne", reflect.Int32},
		{new(vfs.Watch), "wd", reflect.Int32},
		{new(vfs.Watch), "mask", reflect.Struct},
		{new(vfs.Watch), "expired", reflect.Struct},
		{new(vfs.Watch), "target", reflect.Pointer},
		{new(vfs.Inotify), "events", reflect.Struct},
		{new(vfs.Inotify), "id", reflect.Uint64},
		{stateZeroOfField(new(vfs.Inotify), "events"), "head", reflect.Pointer},
		{new(vfs.Event), "wd", reflect.Int32},
		{new(vfs.Event), "mask", reflect.Uint32},
		{new(vfs.Event), "cookie", reflect.Uint32},
		{new(vfs.Event), "name", reflect.Slice},
		{new(vfs.Event), "eventEntry", reflect.Struct},
		{stateZeroOfField(new(vfs.Event), "eventEntry"), "next", reflect.Pointer},
		{new(atomicbitops.Uint32), "value", reflect.Uint32},
		{new(atomicbitops.Int32), "value", reflect.Int32},
		// MADV_DONTFORK (obj_dontfork.go).
		{new(mm.MemoryManager), "vmas", reflect.Struct},
		{vmaSet, "root", reflect.Struct},
		{vmaNode, "nrSegments", reflect.Int},
		{vmaNode, "hasChildren", reflect.Bool},
		{vmaNode, "keys", reflect.Array},
		{vmaNode, "values", reflect.Array},
		{vmaNode, "children", reflect.Array},
		{vmaValue, "dontfork", reflect.Bool},
		// rseq registrations (obj_procattrs.go).
		{new(kernel.Task), "rseqAddr", reflect.Uintptr},
		{new(kernel.Task), "rseqSignature", reflect.Uint32},
	}
}
