package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/kernfs"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/nsfs"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// nsfs fds (/proc/<pid>/ns/<type> opened): a namespace has no identity that survives the sandbox,
// so the image records its type and whether it was the frozen process's own, and a thaw opens the
// thawing process's namespace of that type (the thawing sandbox's namespaces: in a new sandbox
// its net, uts, ipc, ... namespaces; the thawed process lives in them too). A namespace the thawer
// cannot name (the user namespace, whose nsfs inode gVisor may not have; a cgroup namespace
// before cgroupfs was ever mounted) gets a placeholder (thaw_files.go); a nsfs fd never fails the
// thaw. Namespace types that gVisor shows as plain proc files (time, pid_for_children, ...) are
// proc files (obj_procfile.go), reopened as /proc/self/ns/<name>.

// namespaceTypeOf maps gVisor's namespace type names (vfs.Namespace.Type) to CLONE_NEW* flags.
var namespaceTypeOf = map[string]uint32{
	"mnt": linux.CLONE_NEWNS, "cgroup": linux.CLONE_NEWCGROUP, "uts": linux.CLONE_NEWUTS,
	"ipc": linux.CLONE_NEWIPC, "user": linux.CLONE_NEWUSER, "pid": linux.CLONE_NEWPID,
	"net": linux.CLONE_NEWNET, "time": 0x80, // CLONE_NEWTIME (no constant in abi/linux)
}

// captureNamespace records an nsfs file: its namespace's type, and whether it is t's own.
func captureNamespace(t *kernel.Task, file *vfs.FileDescription) (*imgfmt.NamespaceObject, bool, error) {
	d, ok := file.Dentry().Impl().(*kernfs.Dentry)
	if !ok {
		return nil, false, nil
	}
	inode, ok := d.Inode().(*nsfs.Inode)
	if !ok {
		return nil, false, nil
	}
	name := inode.Namespace().Type()
	typ, ok := namespaceTypeOf[name]
	if !ok {
		return nil, false, fmt.Errorf("namespace type %q: %w", name, errUnsupportedObject)
	}
	o := &imgfmt.NamespaceObject{Type: typ}
	if own := namespaceInode(t, typ); own != nil {
		o.Own = own == inode
		own.DecRef(t)
	}
	return o, true, nil
}

// namespaceInode returns the nsfs inode of t's namespace of type typ with a reference, or nil.
func namespaceInode(t *kernel.Task, typ uint32) *nsfs.Inode {
	// Each namespace's reference count is its inode's: Get*Namespace's reference is the inode's.
	switch typ {
	case linux.CLONE_NEWNET:
		if ns := t.GetNetworkNamespace(); ns != nil {
			return ns.GetInode()
		}
	case linux.CLONE_NEWIPC:
		if ns := t.GetIPCNamespace(); ns != nil {
			return ns.GetInode()
		}
	case linux.CLONE_NEWUTS:
		if ns := t.GetUTSNamespace(); ns != nil {
			return ns.GetInode()
		}
	case linux.CLONE_NEWPID:
		if ns := t.GetPIDNamespace(); ns != nil {
			return ns.GetInode()
		}
	case linux.CLONE_NEWCGROUP:
		if !t.Kernel().Cgroup2FS().EverMounted() {
			return nil
		}
		if ns := t.GetCgroupNamespace(); ns != nil {
			return ns.GetInode()
		}
	case linux.CLONE_NEWNS:
		if ns := t.GetMountNamespace(); ns != nil {
			if inode, ok := ns.Refs.(*nsfs.Inode); ok {
				return inode
			}
			ns.DecRef(t)
		}
	case linux.CLONE_NEWUSER:
		if inode, ok := t.UserNamespace().TryGetInode().(*nsfs.Inode); ok {
			return inode
		}
	}
	return nil
}

// thawNamespace opens the thawing process's namespace of the recorded type, or a placeholder.
func thawNamespace(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.NamespaceObject) (*thawedObject, error) {
	first := firstFile(p, o)
	if first == nil {
		return nil, fmt.Errorf("namespace without an fd: %w", errInvalidImage)
	}
	f, err := openNamespace(t, b.Type)
	if err != nil {
		t.Infof("ckpt: thaw: fd %d (%s namespace): %v: placeholder", first.FD, imgfmt.NamespaceTypeName(b.Type), err)
		if f, err = placeholder(t, first); err != nil {
			return nil, fmt.Errorf("placeholder: %w", err)
		}
	}
	return &thawedObject{files: []*vfs.FileDescription{f}}, nil
}

// openNamespace opens t's namespace of type typ read-only, as open(/proc/self/ns/<type>) would.
func openNamespace(t *kernel.Task, typ uint32) (*vfs.FileDescription, error) {
	inode := namespaceInode(t, typ)
	if inode == nil {
		return nil, fmt.Errorf("the thawing process has no such namespace file")
	}
	defer inode.DecRef(t)
	vd := inode.VirtualDentry()
	defer vd.DecRef(t)
	pop := vfs.PathOperation{Root: vd, Start: vd, Path: fspath.Path{}}
	return t.Kernel().VFS().OpenAt(t, t.Credentials(), &pop, &vfs.OpenOptions{Flags: linux.O_RDONLY | linux.O_LARGEFILE})
}
