package ckpt

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unsafe"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/socket/unix/transport"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// An AF_UNIX endpoint's receive queue, its peer link and its listen queue have no exported getter
// (transport keeps them in unexported types). They are read here through the stateify route of
// stateify_fields.go, one level further: the walk follows unexported fields of unexported types,
// checking at every step that the struct's generated StateFields (obtained from a fresh zero value
// of the same type, reflect.New, since values reached through unexported fields cannot be turned
// back into interfaces) still lists the field. Reflection only reads: nothing of the endpoint can
// change. TestUnixStateWalk (obj_unix_state_test.go) runs the walk on real transport endpoints,
// so a gVisor bump that renames, retypes or restructures any of these fails the unit tests.
// docs/upstream-gaps.md lists the fields.

// stateSub returns field name of the struct v points to (through pointers and interfaces), after
// checking that its StateFields lists name. ok is false if a pointer or interface on the way is nil.
func stateSub(v reflect.Value, name string) (f reflect.Value, ok bool, err error) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return reflect.Value{}, false, nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false, fmt.Errorf("reading %q: %s is not a struct (gVisor changed: see docs/upstream-gaps.md)", name, v.Type())
	}
	obj, isState := reflect.New(v.Type()).Interface().(stateifyObject)
	if !isState || !slices.Contains(obj.StateFields(), name) {
		return reflect.Value{}, false, fmt.Errorf("%s has no saved field %q (gVisor changed: see docs/upstream-gaps.md)", v.Type(), name)
	}
	sf, found := v.Type().FieldByName(name)
	if !found || len(sf.Index) != 1 {
		return reflect.Value{}, false, fmt.Errorf("%s lists %q in StateFields but has no such direct field", v.Type(), name)
	}
	return v.Field(sf.Index[0]), true, nil
}

// statePath follows names from v with stateSub. ok is false if a nil pointer is met on the way.
func statePath(v reflect.Value, names ...string) (reflect.Value, bool, error) {
	ok := true
	var err error
	for _, n := range names {
		if v, ok, err = stateSub(v, n); err != nil || !ok {
			return reflect.Value{}, ok, err
		}
	}
	return v, true, nil
}

// stateTypeName returns the stateify type name of the value v holds (through pointers and
// interfaces), or "" if v is nil or not stateify-savable.
func stateTypeName(v reflect.Value) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if obj, ok := reflect.New(v.Type()).Interface().(stateifyObject); ok {
		return obj.StateTypeName()
	}
	return ""
}

// Stateify type names of the transport types the walk knows.
const (
	transportPkg            = "pkg/sentry/socket/unix/transport."
	typeQueueReceiver       = transportPkg + "queueReceiver"
	typeStreamQueueReceiver = transportPkg + "streamQueueReceiver"
	typeQueueSender         = transportPkg + "queueSender"
)

// unixEndpointState is what the walk reads of one endpoint.
type unixEndpointState struct {
	// host: the receiver or sender is not a sentry queue (a host-backed socket).
	host bool
	// recvQueue, sendQueue: the addresses of the queue this endpoint reads from and of the queue it
	// sends into (its peer's receive queue); nil when absent. They identify a connection.
	recvQueue, sendQueue unsafe.Pointer
	recvClosed, reset    bool
	sendClosed           bool
	sendShutdown         bool
	listening            bool
	backlog, pending     int
	queue                []imgfmt.UnixMessage
	queued               int64
	// inFlight, if set, records an fd in flight that a thaw can reopen (nil: dropped).
	inFlight func(*vfs.FileDescription) *imgfmt.UnixRightsFile
}

// maxQueueWalk bounds the messages read from one queue (a queue another process keeps appending
// to while it is read cannot make the walk run forever).
const maxQueueWalk = 1 << 20

// readUnixEndpoint reads ep's queue and connection state. The process owning ep is stopped; a
// writer in another process could append to the queue concurrently (as it could just after the
// freeze): the walk then sees a prefix of the queue.
// inFlight (may be nil) records the fds in flight a thaw can reopen.
func readUnixEndpoint(ep transport.Endpoint, inFlight func(*vfs.FileDescription) *imgfmt.UnixRightsFile) (*unixEndpointState, error) {
	st := &unixEndpointState{inFlight: inFlight}
	v := reflect.ValueOf(ep)
	base, _, err := stateSub(v, "baseEndpoint")
	if err != nil {
		return nil, err
	}
	shut, _, err := stateSub(base, "sendShutdown")
	if err != nil {
		return nil, err
	}
	st.sendShutdown = shut.Bool()
	if _, connectioned := ep.(transport.ConnectingEndpoint); connectioned {
		ch, _, err := stateSub(v, "acceptedChan")
		if err != nil {
			return nil, err
		}
		if ch.Kind() != reflect.Chan {
			return nil, fmt.Errorf("acceptedChan is a %s (gVisor changed)", ch.Kind())
		}
		if !ch.IsNil() {
			st.listening, st.backlog, st.pending = true, ch.Cap(), ch.Len()
		}
	}
	recv, _, err := stateSub(base, "receiver")
	if err != nil {
		return nil, err
	}
	if !recv.IsNil() {
		if err := st.readReceiver(recv); err != nil {
			return nil, err
		}
	}
	peer, _, err := stateSub(base, "peer")
	if err != nil {
		return nil, err
	}
	if !peer.IsNil() {
		if stateTypeName(peer) != typeQueueSender {
			st.host = true
			return st, nil
		}
		q, ok, err := stateSub(peer, "writeQueue")
		if err != nil {
			return nil, fmt.Errorf("peer queue: %w", err)
		}
		if !ok || q.IsNil() {
			return nil, errors.New("connected to a peer without a queue (gVisor changed?)")
		}
		st.sendQueue = q.UnsafePointer()
		if st.sendClosed, err = queueClosed(q); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// readReceiver reads a receiver: its queue (and a stream receiver's partly read message first).
func (st *unixEndpointState) readReceiver(recv reflect.Value) error {
	var q reflect.Value
	switch name := stateTypeName(recv); name {
	case typeStreamQueueReceiver:
		buf, _, err := stateSub(recv, "buffer")
		if err != nil {
			return err
		}
		if buf.Len() > 0 {
			ctl, _, err := stateSub(recv, "control")
			if err != nil {
				return err
			}
			from, _, err := statePath(recv, "addr", "Addr")
			if err != nil {
				return err
			}
			if err := st.addMessage(buf, ctl, from); err != nil {
				return err
			}
		}
		var ok bool
		if q, ok, err = statePath(recv, "queueReceiver", "readQueue"); err != nil {
			return fmt.Errorf("stream receiver queue: %w", err)
		} else if !ok {
			return errors.New("stream receiver without a queue (gVisor changed?)")
		}
	case typeQueueReceiver:
		var ok bool
		var err error
		if q, ok, err = stateSub(recv, "readQueue"); err != nil {
			return fmt.Errorf("receiver queue: %w", err)
		} else if !ok {
			return errors.New("receiver without a queue (gVisor changed?)")
		}
	default:
		st.host = true
		return nil
	}
	st.recvQueue = q.UnsafePointer()
	var err error
	if st.recvClosed, err = queueClosed(q); err != nil {
		return err
	}
	unread, _, err := stateSub(q, "unread")
	if err != nil {
		return err
	}
	st.reset = unread.Bool()
	m, _, err := statePath(q, "dataList", "head")
	if err != nil {
		return err
	}
	for n := 0; m.IsValid() && !m.IsNil(); n++ {
		if n == maxQueueWalk {
			return fmt.Errorf("more than %d queued messages", maxQueueWalk)
		}
		data, _, err := stateSub(m, "Data")
		if err != nil {
			return err
		}
		ctl, _, err := stateSub(m, "Control")
		if err != nil {
			return err
		}
		from, _, err := statePath(m, "Address", "Addr")
		if err != nil {
			return err
		}
		if err := st.addMessage(data, ctl, from); err != nil {
			return err
		}
		if m, _, err = statePath(m, "messageEntry", "next"); err != nil {
			return err
		}
	}
	return nil
}

// addMessage appends one message (data []byte, a ControlMessages, a source address string).
func (st *unixEndpointState) addMessage(data, ctl, from reflect.Value) error {
	if data.Kind() != reflect.Slice || data.Type().Elem().Kind() != reflect.Uint8 || from.Kind() != reflect.String {
		return fmt.Errorf("message fields are %s/%s (gVisor changed)", data.Type(), from.Type())
	}
	if st.queued += int64(data.Len()); st.queued > imgfmt.MaxObjectData {
		return fmt.Errorf("more than %d bytes queued: %w", imgfmt.MaxObjectData, errUnsupportedObject)
	}
	m := imgfmt.UnixMessage{Data: slices.Clone(data.Bytes()), From: from.String()}
	if m.Data == nil {
		m.Data = []byte{}
	}
	creds, _, err := stateSub(ctl, "Credentials")
	if err != nil {
		return err
	}
	m.Creds = !creds.IsNil()
	rights, _, err := stateSub(ctl, "Rights")
	if err != nil {
		return err
	}
	if !rights.IsNil() {
		// The rights are a *control.RightsFiles, a slice of open file descriptions.
		r := rights.Elem()
		for r.Kind() == reflect.Pointer && !r.IsNil() {
			r = r.Elem()
		}
		if r.Kind() != reflect.Slice || r.Type().Elem() != reflect.TypeFor[*vfs.FileDescription]() {
			return fmt.Errorf("SCM_RIGHTS is a %s, want a slice of files (gVisor changed)", r.Type())
		}
		m.Rights = uint32(r.Len())
		for i := 0; st.inFlight != nil && i < r.Len(); i++ {
			// The element is a *vfs.FileDescription (checked above) that the queue holds a
			// reference on; inFlight takes its own before using it.
			if f := st.inFlight((*vfs.FileDescription)(r.Index(i).UnsafePointer())); f != nil {
				m.Files = append(m.Files, *f)
			}
		}
	}
	if len(m.From) > imgfmt.UnixAddrMax || (m.From != "" && m.From[0] != 0 && strings.IndexByte(m.From, 0) >= 0) {
		return fmt.Errorf("message source address %q is not an AF_UNIX address", m.From)
	}
	st.queue = append(st.queue, m)
	return nil
}

// queueClosed reads a *queue's closed flag (an atomicbitops.Bool).
func queueClosed(q reflect.Value) (bool, error) {
	v, _, err := statePath(q, "closed", "Uint32", "value")
	if err != nil {
		return false, err
	}
	switch v.Kind() {
	case reflect.Uint32, reflect.Uint8, reflect.Uint64:
		return v.Uint() != 0, nil
	}
	return false, fmt.Errorf("queue.closed holds a %s (gVisor changed)", v.Kind())
}
