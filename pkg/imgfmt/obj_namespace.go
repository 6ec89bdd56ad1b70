package imgfmt

import "fmt"

// NamespaceObject is an nsfs fd (ObjNamespace): /proc/<pid>/ns/<type> opened, or an fd passed on.
// Body layout: u32 type (the CLONE_NEW* flag of the namespace type), u32 flags (bit 0: it was the
// frozen process's own namespace of that type), u32 reserved, u32 reserved.
type NamespaceObject struct {
	// Type is the namespace type as its CLONE_NEW* flag (CLONE_NEWNET, ...).
	Type uint32
	// Own is set if the fd named the frozen process's own namespace of that type.
	Own bool
}

const namespaceOwn = 1 << 0

// Namespace types (their CLONE_NEW* flags) a namespace object may name.
var namespaceTypes = map[uint32]string{
	0x00020000: "mnt", 0x02000000: "cgroup", 0x04000000: "uts", 0x08000000: "ipc",
	0x10000000: "user", 0x20000000: "pid", 0x40000000: "net", 0x00000080: "time",
}

// NamespaceTypeName returns the name of a namespace type (as in /proc/<pid>/ns/), or "".
func NamespaceTypeName(typ uint32) string { return namespaceTypes[typ] }

// Kind implements ObjectBody.
func (*NamespaceObject) Kind() ObjectKind { return ObjNamespace }

func (o *NamespaceObject) encode(w *wbuf) {
	w.u32(o.Type)
	var flags uint32
	if o.Own {
		flags |= namespaceOwn
	}
	w.u32(flags)
	w.u64(0)
}

func decodeNamespace(r *rbuf) ObjectBody {
	o := &NamespaceObject{Type: r.u32()}
	flags := r.u32()
	if r.err == nil && flags&^namespaceOwn != 0 {
		r.off -= 4
		r.fail("namespace: unknown flags %#x", flags)
	}
	o.Own = flags&namespaceOwn != 0
	r.zero(8, "reserved")
	return o
}

func (o *NamespaceObject) describe() string {
	if o.Own {
		return fmt.Sprintf("%s namespace (own)", NamespaceTypeName(o.Type))
	}
	return fmt.Sprintf("%s namespace", NamespaceTypeName(o.Type))
}

func (o *NamespaceObject) check(p *Process, obj *Object) string {
	if NamespaceTypeName(o.Type) == "" {
		return fmt.Sprintf("unknown namespace type %#x", o.Type)
	}
	if obj.Descs() > 1 {
		return "a namespace fd has one open file description"
	}
	return ""
}
