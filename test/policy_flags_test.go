package test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Tests of the global policy flags (--ckpt-file, --ckpt-signal) on `create`/`start` and `run` of
// an OCI bundle (docs/policy.md): the sandbox starts from a derived bundle with the flags as
// annotations, while the user's bundle stays byte-identical, `state` reports the user's bundle
// and nothing of runsc-ckpt's is left in the state directory.

// policyFlagSignal is the --ckpt-signal of these tests: an ordinary real-time signal, which
// terminates the guest unless the flag reached the sentry.
const policyFlagSignal = "40"

// policyFlags are the global flags of these tests; policyFlagImage is the image they name for the
// sigckpt guest (pid 1 in its container).
var policyFlags = []string{"--ckpt-file=flag-%N-%P.img", "--ckpt-signal=" + policyFlagSignal}

func policyFlagImage(guest string) string { return "flag-" + comm(guest) + "-1.img" }

// policyBundle writes a bundle for the sigckpt guest with args, under the global flags. Its
// config.json names the root file system relatively ("rootfs", a symlink to the host's /), so the
// derived bundle must carry the path as runsc resolved it. It returns the container and the
// config.json bytes.
func policyBundle(t *testing.T, platform string, flags []string, args ...string) (*harness.Container, []byte) {
	t.Helper()
	return policyBundleWithHooks(t, platform, flags, nil, args...)
}

// policyBundleWithHooks is policyBundle with OCI hooks in the spec.
func policyBundleWithHooks(t *testing.T, platform string, flags []string, hooks func(dir string) *specs.Hooks, args ...string) (*harness.Container, []byte) {
	t.Helper()
	c := h.Bundle(t, harness.BundleOpts{
		Opts: harness.Opts{Platform: platform, Persist: true, Flags: flags},
		Args: append([]string{sigckptGuest(t)}, args...),
	})
	if err := os.Symlink("/", filepath.Join(c.Bundle, "rootfs")); err != nil {
		t.Fatal(err)
	}
	c.Spec.Root.Path = "rootfs"
	if hooks != nil {
		c.Spec.Hooks = hooks(c.Dir)
	}
	config, err := json.MarshalIndent(c.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	return c, config
}

// wantBundleUntouched fails t unless the bundle's config.json still holds config and the bundle
// directory holds nothing but config.json, rootfs and the harness's pid file.
func wantBundleUntouched(t *testing.T, c *harness.Container, config []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(c.Bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, config) {
		t.Errorf("config.json changed:\n%s\nwant:\n%s", got, config)
	}
	entries, err := os.ReadDir(c.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "config.json" && e.Name() != "rootfs" {
			t.Errorf("bundle has a new entry %q", e.Name())
		}
	}
}

// wantNoDerivedBundle fails t if the state directory holds a derived bundle.
func wantNoDerivedBundle(t *testing.T, c *harness.Container) {
	t.Helper()
	entries, err := os.ReadDir(c.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "runsc-ckpt-bundle") {
			t.Errorf("state directory %s still holds %s", c.Root, e.Name())
		}
	}
}

// wantStateBundle fails t unless `state` reports the user's bundle directory.
func wantStateBundle(t *testing.T, c *harness.Container) {
	t.Helper()
	r := c.MustRun(t, "state", c.ID)
	var st struct {
		Bundle string `json:"bundle"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("decoding state: %v\n%s", err, r)
	}
	if st.Bundle != c.Bundle {
		t.Errorf("state reports bundle %q, want the user's %q", st.Bundle, c.Bundle)
	}
}

// TestPolicyFlagsRun: `runsc-ckpt --ckpt-file=... --ckpt-signal=40 run` of a bundle whose guest
// sends itself signal 40: the guest is checkpointed (and lives on) into the flag's file name; the
// bundle is unchanged and the state directory empty afterwards.
func TestPolicyFlagsRun(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c, config := policyBundle(t, p, policyFlags, "kill", policyFlagSignal)
		r := c.Run(t, "run", "-bundle="+c.Bundle, c.ID)
		r.WantExit(t, 0)
		wantLines(t, r.Stdout, "kill 0 errno 0", "after 2")
		img := decodeCkptFile(t, filepath.Join(c.Dir, policyFlagImage(guest)))
		wantSigInfo(t, img, 40, siUser, 1)
		wantNoImages(t, c.Dir)
		wantBundleUntouched(t, c, config)
		wantNoDerivedBundle(t, c)
		if ids := c.Containers(t); len(ids) != 0 {
			t.Errorf("containers left after run: %v", ids)
		}
	})
}

// TestPolicyFlagsCreateStart: the same through create + start, with `state` reporting the user's
// bundle and no derived bundle left once create has returned; delete leaves nothing, not even a
// derived bundle that a killed create would have left.
func TestPolicyFlagsCreateStart(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c, config := policyBundle(t, p, policyFlags, "kill", policyFlagSignal)
		c.Create(t)
		wantStateBundle(t, c)
		wantNoDerivedBundle(t, c)
		c.Start(t)
		if code := c.Wait(t); code != 0 {
			t.Fatalf("guest exit status %d, want 0; stdout:\n%s", code, c.GuestStdout())
		}
		wantLines(t, c.GuestStdout(), "kill 0 errno 0", "after 2")
		wantSigInfo(t, decodeCkptFile(t, filepath.Join(c.Dir, policyFlagImage(guest))), 40, siUser, 1)
		// What a create killed halfway would leave behind (its derived bundle); delete removes it.
		leftover := filepath.Join(c.Root, "runsc-ckpt-bundle_"+c.ID+"_1")
		if err := os.Mkdir(leftover, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(leftover, "config.json"), config, 0o600); err != nil {
			t.Fatal(err)
		}
		c.Delete(t, false)
		wantBundleUntouched(t, c, config)
		wantNoDerivedBundle(t, c)
		entries, err := os.ReadDir(c.Root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			// null-netns is runsc's own (--network=none), removed by the harness.
			if e.Name() != "null-netns" {
				t.Errorf("state directory holds %s after delete", e.Name())
			}
		}
	})
}

// TestPolicyFlagsHostKill: `kill <id> SIGCKPT` from the host uses the flag's signal (40) of a
// sandbox created with --ckpt-signal=40, and the image gets the flag's name.
func TestPolicyFlagsHostKill(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c, config := policyBundle(t, p, policyFlags, "loop", "600")
		c.RunDetached(t)
		wantStateBundle(t, c)
		wantNoDerivedBundle(t, c)
		c.WaitForOutput(t, "tick 1\n")
		image := filepath.Join(c.Dir, policyFlagImage(guest))
		c.Kill(t, "SIGCKPT")
		waitForFile(t, image, 30*time.Second)
		wantSigInfo(t, decodeCkptFile(t, image), 40, siUser, hostSender)
		c.Kill(t, "KILL")
		if code := c.Wait(t); code != 128+9 && code != 9 {
			t.Errorf("exit status after KILL %d, want %d", code, 128+9)
		}
		c.Delete(t, false)
		wantBundleUntouched(t, c, config)
		wantNoDerivedBundle(t, c)
	})
}

// TestPolicyFlagsAbsent: without the flags the defaults apply to a bundle: signal 62 writes
// %N.ckpt, and no derived bundle is made (state reports the bundle while the guest runs).
func TestPolicyFlagsAbsent(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c, config := policyBundle(t, p, nil, "kill", sigckptArg)
		c.Create(t)
		wantStateBundle(t, c)
		c.Start(t)
		if code := c.Wait(t); code != 0 {
			t.Fatalf("guest exit status %d, want 0; stdout:\n%s", code, c.GuestStdout())
		}
		wantSigInfo(t, decodeCkptFile(t, filepath.Join(c.Dir, comm(guest)+".ckpt")), ckptabi.SIGCKPT, siUser, 1)
		if _, err := os.Stat(filepath.Join(c.Dir, policyFlagImage(guest))); err == nil {
			t.Errorf("image under the flag's name without the flag")
		}
		c.Delete(t, false)
		wantBundleUntouched(t, c, config)
	})
}

// hookScript is a python3 program for an OCI hook: it writes, to the file named by its argument,
// the bundle directory of the state it gets on stdin and the annotations of that bundle's
// config.json (null if it cannot be read).
const hookScript = `
import json, sys
st = json.load(sys.stdin)
try:
    ann = json.load(open(st["bundle"] + "/config.json")).get("annotations")
except OSError:
    ann = None
json.dump({"bundle": st["bundle"], "annotations": ann}, open(sys.argv[1], "w"))
`

// hookReport is what hookScript writes.
type hookReport struct {
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations"`
}

// readHookReport reads the report of hook name from dir.
func readHookReport(t *testing.T, dir, name string) hookReport {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "hook-"+name+".json"))
	if err != nil {
		t.Fatalf("hook %s did not report: %v", name, err)
	}
	var r hookReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("hook %s report: %v\n%s", name, err, data)
	}
	return r
}

// TestPolicyFlagsHooks documents which bundle the hooks of a container created with policy flags
// see (docs/policy.md): the createRuntime hook, run while create runs, gets the derived bundle,
// whose config.json carries the flags' annotations; poststart (start) and poststop (delete) get
// the user's bundle again.
func TestPolicyFlagsHooks(t *testing.T) {
	hook := func(name string) func(dir string) specs.Hook {
		return func(dir string) specs.Hook {
			return specs.Hook{Path: "/usr/bin/python3", Args: []string{"python3", "-c", hookScript, filepath.Join(dir, "hook-"+name+".json")}}
		}
	}
	hooks := func(dir string) *specs.Hooks {
		return &specs.Hooks{
			CreateRuntime: []specs.Hook{hook("createRuntime")(dir)},
			Poststart:     []specs.Hook{hook("poststart")(dir)},
			Poststop:      []specs.Hook{hook("poststop")(dir)},
		}
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatalf("the hooks need /usr/bin/python3: %v", err)
	}
	c, config := policyBundleWithHooks(t, "", policyFlags, hooks, "kill", policyFlagSignal)
	c.Create(t)
	created := readHookReport(t, c.Dir, "createRuntime")
	if filepath.Dir(created.Bundle) != c.Root || !strings.HasPrefix(filepath.Base(created.Bundle), "runsc-ckpt-bundle_") {
		t.Errorf("createRuntime hook got bundle %q, want a derived bundle in %s", created.Bundle, c.Root)
	}
	if created.Annotations[ckpt.AnnotationSignal] != policyFlagSignal || created.Annotations[ckpt.AnnotationFile] != "flag-%N-%P.img" {
		t.Errorf("createRuntime hook read annotations %v from the derived bundle, want the flags'", created.Annotations)
	}
	c.Start(t)
	if code := c.Wait(t); code != 0 {
		t.Fatalf("guest exit status %d, want 0; stdout:\n%s", code, c.GuestStdout())
	}
	c.Delete(t, false)
	for _, name := range []string{"poststart", "poststop"} {
		r := readHookReport(t, c.Dir, name)
		if r.Bundle != c.Bundle || r.Annotations[ckpt.AnnotationSignal] != "" {
			t.Errorf("%s hook got %+v, want the user's bundle %s (without policy annotations)", name, r, c.Bundle)
		}
	}
	wantBundleUntouched(t, c, config)
	wantNoDerivedBundle(t, c)
}
