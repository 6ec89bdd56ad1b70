package ckpt

import (
	"fmt"
	"slices"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
)

// Process attributes that are not identity (issue 8 item 7): umask, oom_score_adj, the child
// subreaper flag, membarrier registrations and rseq registrations are recorded in one
// process-attributes object and set at commit, as are the MADV_DONTFORK ranges of the address
// space (obj_dontfork.go); supplementary groups (recorded in the process
// note) are set if the thawer may set them (CAP_SETGID in its user namespace, as setgroups(2)
// requires), else the thawer's stay (logged). The parent death signal is in the signals note
// (restored by thaw_signals.go). An oom_score_adj below the thawer's needs CAP_SYS_RESOURCE, as
// writing /proc/self/oom_score_adj would on Linux; without it the thawer's stays (logged).
//
// rseq: gVisor registers rseq only where the platform reports CPU numbers and preemption (not
// systrap or ptrace: rseq(2) there fails with ENOSYS, so glibc runs without one and there is
// nothing to record). The registration is read through the stateify fields rseqAddr and
// rseqSignature of each task. A thaw restores the freezing thread's (SetRSeq must run on the
// task's own goroutine: other threads' registrations are not restored, logged).

// captureProcAttrs records t's process's attributes.
func captureProcAttrs(t *kernel.Task, p *imgfmt.Process) (*imgfmt.ProcAttrsObject, error) {
	tg := t.ThreadGroup()
	mm := t.MemoryManager()
	o := &imgfmt.ProcAttrsObject{
		Umask:          uint32(t.FSContext().Umask()) & 0o777,
		OOMScoreAdj:    t.OOMScoreAdj(),
		ChildSubreaper: tg.IsChildSubreaper(),
	}
	if mm != nil {
		o.MembarrierPrivate = mm.IsMembarrierPrivateEnabled()
		o.MembarrierRSeq = mm.IsMembarrierRSeqEnabled()
		var err error
		if o.DontFork, err = dontForkRanges(t, mm); err != nil {
			return nil, err
		}
	}
	ns := tg.PIDNamespace()
	for _, tid := range tg.MemberIDs(ns) {
		task := ns.TaskWithID(tid)
		if task == nil || !p.HasThread(int32(tid)) {
			continue
		}
		addr, err := stateUint(task, "rseqAddr")
		if err != nil {
			return nil, err
		}
		if addr == 0 {
			continue
		}
		sig, err := stateUint(task, "rseqSignature")
		if err != nil {
			return nil, err
		}
		o.RSeq = append(o.RSeq, imgfmt.RSeqRegistration{TID: int32(tid), Signature: uint32(sig), Addr: addr, Length: imgfmt.RSeqSize})
	}
	slices.SortFunc(o.RSeq, func(a, b imgfmt.RSeqRegistration) int { return int(a.TID - b.TID) })
	return o, nil
}

// thawProcAttrs returns an object whose commit sets the attributes on t's process.
func thawProcAttrs(t *kernel.Task, p *imgfmt.Process, b *imgfmt.ProcAttrsObject) (*thawedObject, error) {
	return &thawedObject{commit: func(t *kernel.Task) error {
		commitProcAttrs(t, p, b)
		return nil
	}}, nil
}

// commitProcAttrs sets what the thawer may set and logs what it keeps.
//
// Preconditions: running on t's task goroutine, at commit (after the exec: t's address space is
// the thawed one).
func commitProcAttrs(t *kernel.Task, p *imgfmt.Process, b *imgfmt.ProcAttrsObject) {
	t.FSContext().SwapUmask(uint(b.Umask))
	if b.OOMScoreAdj < t.OOMScoreAdj() && !t.HasCapabilityIn(linux.CAP_SYS_RESOURCE, t.UserNamespace()) {
		t.Infof("ckpt: thaw: oom_score_adj %d below the thawer's %d needs CAP_SYS_RESOURCE: the thawer's kept", b.OOMScoreAdj, t.OOMScoreAdj())
	} else if err := t.SetOOMScoreAdj(b.OOMScoreAdj); err != nil {
		t.Warningf("ckpt: thaw: oom_score_adj %d: %v", b.OOMScoreAdj, err)
	}
	t.ThreadGroup().SetChildSubreaper(b.ChildSubreaper)
	if mm := t.MemoryManager(); mm != nil {
		if b.MembarrierPrivate {
			mm.EnableMembarrierPrivate()
		}
		if b.MembarrierRSeq {
			mm.EnableMembarrierRSeq()
		}
	}
	restoreGroups(t, p)
	restoreDontFork(t, b.DontFork) // obj_dontfork.go
	for _, r := range b.RSeq {
		switch {
		case len(p.Threads) == 0 || r.TID != p.Threads[0].TID:
			t.Infof("ckpt: thaw: rseq of thread %d (image tid) not restored: only the thawing thread's can be", r.TID)
		case !t.RSeqAvailable():
			t.Infof("ckpt: thaw: rseq at %#x not restored: this platform has no rseq", r.Addr)
		default:
			if err := t.SetRSeq(hostarch.Addr(r.Addr), r.Length, r.Signature); err != nil {
				t.Warningf("ckpt: thaw: rseq at %#x: %v", r.Addr, err)
			}
		}
	}
}

// restoreGroups sets the image's supplementary groups if they differ from the thawer's and the
// thawer may (CAP_SETGID); groups the thawer's user namespace cannot map keep the thawer's.
func restoreGroups(t *kernel.Task, p *imgfmt.Process) {
	creds := t.Credentials()
	var now []uint32
	for _, g := range creds.ExtraKGIDs {
		now = append(now, uint32(g.In(creds.UserNamespace).OrOverflow()))
	}
	if slices.Equal(now, p.Creds.Groups) || (len(now) == 0 && len(p.Creds.Groups) == 0) {
		return
	}
	gids := make([]auth.GID, len(p.Creds.Groups))
	for i, g := range p.Creds.Groups {
		gids[i] = auth.GID(g)
	}
	if err := t.SetExtraGIDs(gids); err != nil {
		t.Infof("ckpt: thaw: supplementary groups %v not set (%v): the thawer's %v kept", p.Creds.Groups, err, now)
	}
}

// defaultUmask is the umask of a process that never called umask(2) (Linux's and gVisor's).
const defaultUmask = 0o022

// captureProcessAttrsObject is captureProcAttrs for captureProcessObjects: nil when every attribute
// has its default value (umask 022, oom_score_adj 0, no subreaper, membarrier, rseq,
// supplementary groups or MADV_DONTFORK range), so that
// such images stay in the lowest format revision that expresses them (older readers can read
// them). A thaw of an image without the object leaves the thawer's attributes.
func captureProcessAttrsObject(t *kernel.Task, p *imgfmt.Process) (imgfmt.ObjectBody, error) {
	o, err := captureProcAttrs(t, p)
	if err != nil {
		return nil, fmt.Errorf("process attributes: %w", err)
	}
	if o.Umask == defaultUmask && o.OOMScoreAdj == 0 && !o.ChildSubreaper && !o.MembarrierPrivate && !o.MembarrierRSeq &&
		len(o.RSeq) == 0 && len(p.Creds.Groups) == 0 && len(o.DontFork) == 0 {
		return nil, nil
	}
	return o, nil
}
