package ckpt

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// A thaw execs the caller's current executable (thaw.go) to get rid of its other threads and its
// address space. That executable is whatever the caller's /proc/self/exe is, and after a thaw that
// is the executable the *image* named. An image may name any file the thawer can open, such as a
// set-user-ID root binary; a later thaw from that process would then exec it with its set-id bits
// (under --allow-suid) or file capabilities honoured, and the commit would run the image's memory
// with the raised credentials. A thaw must never raise credentials: checkExecGainsNothing computes,
// with the same exported function execve uses, what the exec would give, and the thaw is refused
// (EPERM, caller untouched) if that is more than the caller has.

// checkExecGainsNothing returns EPERM if exec'ing exe would give t's process any user or group id,
// or any capability, that it does not have now. A root process that dropped capabilities is refused
// too (its exec would regain them, as on Linux).
//
// Preconditions: running on t's task goroutine.
func checkExecGainsNothing(t *kernel.Task, exe *vfs.FileDescription) error {
	privs, err := exe.GetFilePrivileges(t)
	if err != nil {
		return fmt.Errorf("reading the executable's privileges: %w", err)
	}
	c := t.Credentials()
	// stopPrivGain false: the most the exec could give, whatever ptrace or sharing would stop.
	n, _, err := auth.ComputeCredsForExec(c, privs, exe.MappedName(t), t.GetNoNewPrivs(), false, t.Kernel().AllowSUID)
	if err != nil {
		return err
	}
	// An id is no gain if the caller could switch to it with setresuid/setresgid anyway.
	uidOK := func(id auth.KUID) bool { return id == c.RealKUID || id == c.EffectiveKUID || id == c.SavedKUID }
	gidOK := func(id auth.KGID) bool { return id == c.RealKGID || id == c.EffectiveKGID || id == c.SavedKGID }
	if !uidOK(n.EffectiveKUID) || !uidOK(n.SavedKUID) || !gidOK(n.EffectiveKGID) || !gidOK(n.SavedKGID) ||
		!n.PermittedCaps.IsSubsetOf(c.PermittedCaps) || !n.EffectiveCaps.IsSubsetOf(c.PermittedCaps) {
		t.Infof("ckpt: thaw refused: exec'ing %q would raise the caller's credentials (euid %d→%d, egid %d→%d, caps %#x→%#x)",
			exe.MappedName(t), c.EffectiveKUID, n.EffectiveKUID, c.EffectiveKGID, n.EffectiveKGID, c.PermittedCaps, n.PermittedCaps)
		return linuxerr.EPERM
	}
	return nil
}
