package ckpt

import (
	"testing"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/pkg/sentry/uniqueid"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
)

// probeContext is the little a VFS and an inotify instance need from a context.
type probeContext struct {
	context.Context
	creds *auth.Credentials
	id    uint64
}

func (c *probeContext) Value(key any) any {
	switch key {
	case auth.CtxCredentials:
		return c.creds
	case uniqueid.CtxGlobalUniqueID:
		c.id++
		return c.id
	}
	return c.Context.Value(key)
}

// TestInotifyProbe checks the route that reads an inotify instance's watches (obj_inotify.go)
// against this gVisor: the watches come back with their wd, mask and target, and the probe's
// AddWatch leaves no trace (no descriptor used, no event queued). A gVisor bump that changes
// AddWatch or the saved fields fails here.
func TestInotifyProbe(t *testing.T) {
	ctx := &probeContext{Context: context.Background(), creds: auth.NewRootCredentials(auth.NewRootUserNamespace())}
	vfsObj := &vfs.VirtualFilesystem{}
	if err := vfsObj.Init(ctx); err != nil {
		t.Fatalf("vfs: %v", err)
	}
	f, err := vfs.NewInotifyFD(ctx, vfsObj, linux.O_NONBLOCK)
	if err != nil {
		t.Fatalf("NewInotifyFD: %v", err)
	}
	i := f.Impl().(*vfs.Inotify)
	a, b := &inotifyFiller{}, &inotifyFiller{}
	a.vfsd.Init(a)
	b.vfsd.Init(b)
	if wd := i.AddWatch(&a.vfsd, linux.IN_CREATE|linux.IN_ONLYDIR); wd != 1 {
		t.Fatalf("first wd %d", wd)
	}
	if wd := i.AddWatch(&b.vfsd, linux.IN_MODIFY); wd != 2 {
		t.Fatalf("second wd %d", wd)
	}
	for round := 0; round < 2; round++ {
		refs, last, err := readInotifyWatches(i)
		if err != nil {
			t.Fatalf("readInotifyWatches: %v", err)
		}
		if last != 2 || len(refs) != 2 ||
			refs[0] != (inotifyWatchRef{1, linux.IN_CREATE | linux.IN_ONLYDIR, &a.vfsd, true}) ||
			refs[1] != (inotifyWatchRef{2, linux.IN_MODIFY, &b.vfsd, true}) {
			t.Fatalf("round %d: watches %+v, last %d", round, refs, last)
		}
	}
	// The probe used no descriptor and queued nothing.
	if wd := i.AddWatch(&a.vfsd, linux.IN_DELETE); wd != 1 {
		t.Errorf("AddWatch on a watched target: wd %d, want 1", wd)
	}
	buf := make([]byte, 4096)
	if n, err := f.Read(ctx, usermem.BytesIOSequence(buf), vfs.ReadOptions{}); n != 0 || err == nil {
		t.Errorf("queue after the probes: %d bytes, %v; want empty", n, err)
	}
	if err := i.RmWatch(ctx, 2); err != nil {
		t.Fatal(err)
	}
	c := &inotifyFiller{}
	c.vfsd.Init(c)
	if wd := i.AddWatch(&c.vfsd, linux.IN_ACCESS); wd != 3 {
		t.Errorf("next wd %d, want 3", wd)
	}
}
