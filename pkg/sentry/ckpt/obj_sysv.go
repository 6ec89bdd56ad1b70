package ckpt

import (
	"fmt"
	"reflect"
	"sort"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/ipc"
	"gvisor.dev/gvisor/pkg/sentry/kernel/msgqueue"
	"gvisor.dev/gvisor/pkg/sentry/kernel/semaphore"
)

// SysV semaphore sets and message queues (issue 8 item 5). They belong to the IPC namespace, not
// to a process, and a process names them by key or id without an fd: the freeze records every
// set and queue of the process's IPC namespace that it may read (as CRIU dumps the namespace),
// with key, id, mode, owner and contents (semaphore values; queued messages in order). Sets the
// process may not read are left out (logged).
//
// Thaw, in the prepare phase (so that a failure changes nothing): an object whose key (or, for
// IPC_PRIVATE, id) is already there with the same id is the same object still alive (a thaw in
// the same sandbox) and is left as it is; a key already used by another id, or an id used by
// another object, fails the thaw with EEXIST. Otherwise the object is created in the thawing IPC
// namespace with its id — gVisor gives the first free id after the last one used, so fillers
// (IPC_PRIVATE objects created and removed) advance it; an id below the next one cannot be had:
// EBUSY — its values or messages are put back, and its owner and mode set (IPC_SET: the thawer
// created it). Created objects are removed again if the thaw fails before its commit. Not
// restored: semaphore adjustments (SEM_UNDO), per-semaphore last pids (SETALL sets the thawed
// process's), the times, the last send/receive pids.

// sysvRegistries returns t's IPC namespace's semaphore and message queue registries.
func sysvRegistries(t *kernel.Task) (*semaphore.Registry, *msgqueue.Registry) {
	ns := t.IPCNamespace()
	return ns.SemaphoreRegistry(), ns.MsgqueueRegistry()
}

// sysvPermOf reads an IPC object's identity in t's user namespace.
func sysvPermOf(t *kernel.Task, o *ipc.Object) imgfmt.SysVPerm {
	ns := t.Credentials().UserNamespace
	return imgfmt.SysVPerm{
		ID: int32(o.ID), Key: int32(o.Key), Mode: uint32(o.Mode & 0o777),
		UID: uint32(o.OwnerUID.In(ns).OrOverflow()), GID: uint32(o.OwnerGID.In(ns).OrOverflow()),
		CUID: uint32(o.CreatorUID.In(ns).OrOverflow()), CGID: uint32(o.CreatorGID.In(ns).OrOverflow()),
	}
}

// captureSysV returns the semaphore sets and message queues of t's IPC namespace, each kind in
// ascending id order.
func captureSysV(t *kernel.Task) ([]imgfmt.ObjectBody, error) {
	sems, msgs := sysvRegistries(t)
	creds := t.Credentials()
	var out []imgfmt.ObjectBody
	var sets []*imgfmt.SysVSemObject
	for i := int32(0); i <= sems.HighestIndex(); i++ {
		s := sems.FindByIndex(i)
		if s == nil {
			continue
		}
		vals, err := s.GetValAll(creds)
		if err != nil {
			t.Infof("ckpt: freeze: semaphore set %d left out: %v", s.ID(), err)
			continue
		}
		o := &imgfmt.SysVSemObject{Values: vals}
		s.Lock()
		o.SysVPerm = sysvPermOf(t, s.Object())
		s.Unlock()
		for n := range vals {
			pid, err := s.GetPID(int32(n), creds)
			if err != nil {
				return nil, fmt.Errorf("semaphore set %d: %w", s.ID(), err)
			}
			o.PIDs = append(o.PIDs, pid)
		}
		sets = append(sets, o)
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i].ID < sets[j].ID })
	for _, o := range sets {
		out = append(out, o)
	}
	ids, err := sysvIDs(msgs)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, id := range ids {
		q, err := msgs.FindByID(id)
		if err != nil {
			continue
		}
		o, err := captureMsgQueue(t, q)
		if err != nil {
			return nil, fmt.Errorf("message queue %d: %w", id, err)
		}
		if o == nil {
			continue
		}
		for _, m := range o.Messages {
			total += int64(len(m.Text))
		}
		if total > imgfmt.MaxObjectData {
			return nil, fmt.Errorf("SysV messages exceed %d bytes: %w", imgfmt.MaxObjectData, errUnsupportedObject)
		}
		out = append(out, o)
	}
	return out, nil
}

// sysvIDs lists the ids of a message queue registry (msgqueue has no enumeration: its ipc
// registry's saved field "objects"), ascending.
func sysvIDs(msgs *msgqueue.Registry) ([]ipc.ID, error) {
	reg, err := stateField(msgs, "reg")
	if err != nil {
		return nil, err
	}
	objects, err := stateFieldOf(reg, new(ipc.Registry), "objects")
	if err != nil {
		return nil, err
	}
	if objects.Kind() != reflect.Map {
		return nil, fmt.Errorf("ipc.Registry.objects is a %s (gVisor changed)", objects.Kind())
	}
	var ids []ipc.ID
	for _, k := range objects.MapKeys() {
		ids = append(ids, ipc.ID(k.Int()))
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// captureMsgQueue records a queue and its messages (read under the queue's lock through the saved
// fields of its message list), or nil if the process may not read it.
func captureMsgQueue(t *kernel.Task, q *msgqueue.Queue) (*imgfmt.SysVMsgObject, error) {
	ds, err := q.Stat(t)
	if err != nil {
		t.Infof("ckpt: freeze: message queue %d left out: %v", q.ID(), err)
		return nil, nil
	}
	o := &imgfmt.SysVMsgObject{QBytes: ds.MsgQbytes}
	q.Lock()
	defer q.Unlock()
	o.SysVPerm = sysvPermOf(t, q.Object())
	list, err := stateField(q, "messages")
	if err != nil {
		return nil, err
	}
	m, err := stateFieldOf(list, stateZeroOfField(q, "messages"), "head")
	if err != nil {
		return nil, err
	}
	zero := new(msgqueue.Message)
	for n := uint64(0); !m.IsNil(); n++ {
		if n > ds.MsgQnum {
			return nil, fmt.Errorf("more messages than the queue counts (%d)", ds.MsgQnum)
		}
		typ, err := stateFieldOf(m, zero, "Type")
		if err != nil {
			return nil, err
		}
		text, err := stateFieldOf(m, zero, "Text")
		if err != nil {
			return nil, err
		}
		if text.Len() > imgfmt.MaxSysVMessage {
			return nil, fmt.Errorf("a message of %d bytes", text.Len())
		}
		o.Messages = append(o.Messages, imgfmt.SysVMessage{Type: typ.Int(), Text: append([]byte{}, text.Bytes()...)})
		entry, err := stateFieldOf(m, zero, "msgEntry")
		if err != nil {
			return nil, err
		}
		if m, err = stateFieldOf(entry, stateZeroOfField(zero, "msgEntry"), "next"); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// lastIDUsed reads the last id an IPC registry gave (its ipc registry's saved field).
func lastIDUsed(reg stateifyObject) (ipc.ID, error) {
	r, err := stateField(reg, "reg")
	if err != nil {
		return 0, err
	}
	last, err := stateFieldOf(r, new(ipc.Registry), "lastIDUsed")
	if err != nil {
		return 0, err
	}
	return ipc.ID(last.Int()), nil
}

// sysvCreator creates one object of a registry: exists reports the object with an id, create makes
// one (a filler when private), remove removes one.
type sysvCreator struct {
	reg    stateifyObject
	exists func(id ipc.ID) bool
	create func(private bool) (ipc.ID, error)
	remove func(id ipc.ID) error
}

// createWithID creates an object with id want through c, advancing the registry's next id with
// fillers; it fails with EBUSY when want is below the next id.
func (c *sysvCreator) createWithID(want ipc.ID) (ipc.ID, error) {
	for fillers := 0; ; fillers++ {
		last, err := lastIDUsed(c.reg)
		if err != nil {
			return 0, err
		}
		next := last + 1
		for next > 0 && c.exists(next) {
			next++
		}
		switch {
		case next <= 0 || next > want:
			return 0, fmt.Errorf("id %d cannot be had: the next free id is %d: %w", want, next, errTimerID)
		case fillers > maxTimerFillers:
			return 0, fmt.Errorf("id %d cannot be had: more than %d fillers: %w", want, maxTimerFillers, errTimerID)
		case next == want:
			id, err := c.create(false)
			if err == nil && id != want {
				c.remove(id)
				return 0, fmt.Errorf("id %d cannot be had: got %d: %w", want, id, errTimerID)
			}
			return id, err
		}
		id, err := c.create(true)
		if err != nil {
			return 0, fmt.Errorf("filler: %w", err)
		}
		if err := c.remove(id); err != nil {
			return 0, fmt.Errorf("removing filler %d: %w", id, err)
		}
	}
}

// sysvExisting decides about an object of the image against the thawing namespace: alive (the same
// key and id are there), or free to create; EEXIST if its key or id is used by another object.
func sysvExisting(perm *imgfmt.SysVPerm, idOfKey func(ipc.Key) (ipc.ID, bool), keyOfID func(ipc.ID) (ipc.Key, bool)) (alive bool, err error) {
	if perm.Key != linux.IPC_PRIVATE {
		if id, ok := idOfKey(ipc.Key(perm.Key)); ok {
			if id == ipc.ID(perm.ID) {
				return true, nil
			}
			return false, fmt.Errorf("key %#x is id %d here, not %d: %w", uint32(perm.Key), id, perm.ID, linuxerr.EEXIST)
		}
	}
	if key, ok := keyOfID(ipc.ID(perm.ID)); ok {
		if key == ipc.Key(perm.Key) && key == linux.IPC_PRIVATE {
			return true, nil
		}
		return false, fmt.Errorf("id %d is used here by key %#x: %w", perm.ID, uint32(key), linuxerr.EEXIST)
	}
	return false, nil
}

// sysvSetPerm gives a created object the image's owner and mode (IPC_SET as its creator).
func sysvSetPerm(t *kernel.Task, perm *imgfmt.SysVPerm, set func(*linux.IPCPerm) error) error {
	p := linux.IPCPerm{Key: uint32(perm.Key), UID: perm.UID, GID: perm.GID, Mode: uint16(perm.Mode)}
	if err := set(&p); err != nil {
		return fmt.Errorf("IPC_SET uid %d gid %d mode %#o: %w", perm.UID, perm.GID, perm.Mode, err)
	}
	return nil
}

// thawSysVSem recreates a semaphore set (or finds it alive), in the prepare phase.
func thawSysVSem(t *kernel.Task, b *imgfmt.SysVSemObject) (*thawedObject, error) {
	sems, _ := sysvRegistries(t)
	alive, err := sysvExisting(&b.SysVPerm, func(k ipc.Key) (ipc.ID, bool) {
		s, err := sems.FindOrCreate(t, k, 0, 0, false, false, false)
		if err != nil || s == nil {
			return 0, false
		}
		return s.ID(), true
	}, func(id ipc.ID) (ipc.Key, bool) {
		s := sems.FindByID(id)
		if s == nil {
			return 0, false
		}
		s.Lock()
		defer s.Unlock()
		return s.Object().Key, true
	})
	if err != nil {
		return nil, fmt.Errorf("semaphore set: %w", err)
	}
	if alive {
		return &thawedObject{}, nil
	}
	creds := t.Credentials()
	c := &sysvCreator{
		reg:    sems,
		exists: func(id ipc.ID) bool { return sems.FindByID(id) != nil },
		create: func(private bool) (ipc.ID, error) {
			n, mode, key := int32(len(b.Values)), linux.FileMode(0o600), ipc.Key(b.Key)
			if private {
				n, key = 1, linux.IPC_PRIVATE
			} else {
				private = key == linux.IPC_PRIVATE
			}
			s, err := sems.FindOrCreate(t, key, n, mode, private, true, true)
			if err != nil {
				return 0, err
			}
			return s.ID(), nil
		},
		remove: func(id ipc.ID) error { return sems.Remove(id, creds) },
	}
	id, err := c.createWithID(ipc.ID(b.ID))
	if err != nil {
		return nil, fmt.Errorf("semaphore set %d: %w", b.ID, err)
	}
	th := &thawedObject{undo: func(t *kernel.Task) { sems.Remove(id, creds) }}
	s := sems.FindByID(id)
	if err := s.SetValAll(t, b.Values, creds, int32(t.ThreadGroup().ID())); err != nil {
		th.release(t)
		return nil, fmt.Errorf("semaphore set %d: SETALL: %w", b.ID, err)
	}
	if err := sysvSetPerm(t, &b.SysVPerm, func(p *linux.IPCPerm) error { return s.Set(t, &linux.SemidDS{SemPerm: *p}) }); err != nil {
		th.release(t)
		return nil, fmt.Errorf("semaphore set %d: %w", b.ID, err)
	}
	return th, nil
}

// thawSysVMsg recreates a message queue with its messages (or finds it alive), in the prepare
// phase.
func thawSysVMsg(t *kernel.Task, b *imgfmt.SysVMsgObject) (*thawedObject, error) {
	_, msgs := sysvRegistries(t)
	alive, err := sysvExisting(&b.SysVPerm, func(k ipc.Key) (ipc.ID, bool) {
		q, err := msgs.FindOrCreate(t, k, 0, false, false, false)
		if err != nil || q == nil {
			return 0, false
		}
		return q.ID(), true
	}, func(id ipc.ID) (ipc.Key, bool) {
		q, err := msgs.FindByID(id)
		if err != nil {
			return 0, false
		}
		q.Lock()
		defer q.Unlock()
		return q.Object().Key, true
	})
	if err != nil {
		return nil, fmt.Errorf("message queue: %w", err)
	}
	if alive {
		return &thawedObject{}, nil
	}
	creds := t.Credentials()
	c := &sysvCreator{
		reg:    msgs,
		exists: func(id ipc.ID) bool { _, err := msgs.FindByID(id); return err == nil },
		create: func(private bool) (ipc.ID, error) {
			key := ipc.Key(b.Key)
			if private {
				key = linux.IPC_PRIVATE
			} else {
				private = key == linux.IPC_PRIVATE
			}
			q, err := msgs.FindOrCreate(t, key, 0o600, private, true, true)
			if err != nil {
				return 0, err
			}
			return q.ID(), nil
		},
		remove: func(id ipc.ID) error { return msgs.Remove(id, creds) },
	}
	id, err := c.createWithID(ipc.ID(b.ID))
	if err != nil {
		return nil, fmt.Errorf("message queue %d: %w", b.ID, err)
	}
	th := &thawedObject{undo: func(t *kernel.Task) { msgs.Remove(id, creds) }}
	fail := func(err error) (*thawedObject, error) {
		th.release(t)
		return nil, fmt.Errorf("message queue %d: %w", b.ID, err)
	}
	q, err := msgs.FindByID(id)
	if err != nil {
		return fail(err)
	}
	ds, err := q.Stat(t)
	if err != nil {
		return fail(err)
	}
	if b.QBytes != ds.MsgQbytes {
		ds.MsgQbytes = b.QBytes
		if err := q.Set(t, ds); err != nil {
			t.Infof("ckpt: thaw: message queue %d: msg_qbytes %d not set (%v): %d kept", b.ID, b.QBytes, err, ds.MsgQbytes)
		}
	}
	pid := int32(t.ThreadGroup().ID())
	for i, m := range b.Messages {
		if err := q.Send(t, msgqueue.Message{Type: m.Type, Text: m.Text}, false, pid); err != nil {
			return fail(fmt.Errorf("message %d: %w", i, err))
		}
	}
	if err := sysvSetPerm(t, &b.SysVPerm, func(p *linux.IPCPerm) error {
		ds, err := q.Stat(t)
		if err != nil {
			return err
		}
		ds.MsgPerm = *p
		return q.Set(t, ds)
	}); err != nil {
		return fail(err)
	}
	return th, nil
}
