package test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Permissions (issue 13 item 4) for an unprivileged user (uid 65534, no capabilities) under
// --ckpt-group: TestPolicyGroup covers root in and out of the group, TestSigckptErrnos and
// TestSigckptHostAllAndGroup the signal routes, freeze_untraceable_pid (TestSyscallArgumentErrors)
// another user's process. Here the group is a supplementary group of a non-root user: as a member
// it may freeze and thaw itself and thaw an image; without it the syscall (freeze and thaw) and
// SIGCKPT are EPERM and its image file stays empty.
func TestPermGroupUnprivileged(t *testing.T) {
	stress := h.BuildC(t, "hostile_stress")
	thawer := h.BuildC(t, "hostile_thaw")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		// An image both users may thaw, frozen by root without the policy.
		shared := h.NewDir(t)
		good := filepath.Join(shared, "good.ckpt")
		h.Do(t, harness.Opts{Platform: p, Persist: true}, thawer, "freeze", good, filepath.Join(shared, "none")).WantExit(t, 128+9)
		for _, member := range []bool{true, false} {
			t.Run(fmt.Sprintf("member=%v", member), func(t *testing.T) {
				dir := h.NewDir(t)
				user := specs.User{UID: unprivUID, GID: unprivUID}
				if member {
					user.AdditionalGids = []uint32{4242}
				}
				img := filepath.Join(dir, "self.ckpt")
				script := fmt.Sprintf("%s cycles 1 %s; echo cycles=$?; %s thaw %s; sleep 100 & P=$!; kill -%s $P; echo kill=$?; kill -9 $P; wc -c < %s",
					stress, img, thawer, good, sigckptArg, img)
				c := h.Bundle(t, harness.BundleOpts{
					Opts: harness.Opts{Platform: p, Persist: true, Flags: []string{"--ckpt-group=4242"}},
					Args: []string{"/bin/sh", "-c", script},
					Cwd:  dir,
					User: user,
				})
				dropCapabilities(t, c)
				c.Create(t)
				c.Start(t)
				c.Wait(t)
				out := c.GuestStdout() + c.GuestStderr()
				want := []string{"cycles=1 ok\n", "cycles=0\n", "thawed r=7 uid=65534/65534/65534", "case good.ckpt status=0\n", "kill=0\n"}
				if !member {
					// The image file the guest opened stays empty (0 bytes).
					want = []string{"freeze 1 returned -1 errno=1\n", "cycles=1\n", "case good.ckpt thaw=-1 errno=EPERM", "kill=1\n", "\n0\n"}
				}
				for _, w := range want {
					if !strings.Contains(out, w) {
						t.Errorf("want %q in:\n%s", w, out)
					}
				}
			})
		}
	})
}
