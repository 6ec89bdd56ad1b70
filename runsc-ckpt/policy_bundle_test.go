package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/flag"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"
)

// testBundleConfig is a config.json with a relative root, relative and absolute mount sources, a
// mount without a source, an annotation and a field unknown to runsc.
const testBundleConfig = `{
	"ociVersion": "1.0.0",
	"process": {"args": ["/bin/true"], "cwd": "/"},
	"root": {"path": "rootfs", "readonly": true},
	"mounts": [
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind"]},
		{"destination": "/tmp", "type": "tmpfs"}
	],
	"annotations": {"org.example": "x"},
	"x-vendor-field": {"kept": true}
}`

// testConfig returns a runsc configuration with every flag at its default and rootDir as --root.
func testConfig(t *testing.T, rootDir string) *config.Config {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	config.RegisterFlags(fs)
	if err := fs.Parse([]string{"--root=" + rootDir}); err != nil {
		t.Fatal(err)
	}
	conf, err := config.NewFromFlags(fs)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// writeBundle writes testBundleConfig into a new bundle directory and returns it.
func writeBundle(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(testBundleConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fetchCreate runs the wrapped create's FetchSpec for `create --bundle=bundle cid` under the
// global policy flags and returns the command and its flag set.
func fetchCreate(t *testing.T, conf *config.Config, bundle string, flags ...string) (*policyCommand, *flag.FlagSet) {
	t.Helper()
	c := newPolicyFlags(t, flags...).wrap(new(cmd.Create)).(*policyCommand)
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	c.SetFlags(fs)
	if err := fs.Parse([]string{"--bundle=" + bundle, "cid"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.FetchSpec(conf, fs); err != nil {
		t.Fatalf("FetchSpec: %v", err)
	}
	return c, fs
}

func TestPolicyCommandDerivesBundle(t *testing.T) {
	bundle := writeBundle(t)
	root := t.TempDir()
	c, fs := fetchCreate(t, testConfig(t, root), bundle, "--ckpt-signal=40", "--ckpt-file=x%P")
	if c.derived == nil {
		t.Fatal("no derived bundle")
	}
	dir := fs.Lookup("bundle").Value.String()
	if filepath.Dir(dir) != root || !strings.HasPrefix(filepath.Base(dir), derivedBundlePrefix+"cid_") || dir != c.derived.dir {
		t.Fatalf("--bundle is %q (derived %q), want a derived bundle in %s", dir, c.derived.dir, root)
	}
	user, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil || string(user) != testBundleConfig {
		t.Errorf("the user's config.json changed (%v):\n%s", err, user)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Root struct {
			Path     string `json:"path"`
			Readonly bool   `json:"readonly"`
		} `json:"root"`
		Mounts []struct {
			Source  string   `json:"source"`
			Options []string `json:"options"`
		} `json:"mounts"`
		Annotations map[string]string `json:"annotations"`
		Vendor      struct {
			Kept bool `json:"kept"`
		} `json:"x-vendor-field"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("derived config.json: %v\n%s", err, data)
	}
	if got.Root.Path != filepath.Join(bundle, "rootfs") || !got.Root.Readonly {
		t.Errorf("root = %+v, want path %s, readonly", got.Root, filepath.Join(bundle, "rootfs"))
	}
	wantSources := []string{filepath.Join(bundle, "proc"), "/srv/data", ""}
	if len(got.Mounts) != len(wantSources) {
		t.Fatalf("mounts = %+v", got.Mounts)
	}
	for i, m := range got.Mounts {
		if m.Source != wantSources[i] {
			t.Errorf("mounts[%d].source = %q, want %q", i, m.Source, wantSources[i])
		}
	}
	if len(got.Mounts[1].Options) != 1 {
		t.Errorf("mount options lost: %+v", got.Mounts[1])
	}
	wantAnn := map[string]string{"org.example": "x", ckpt.AnnotationSignal: "40", ckpt.AnnotationFile: "x%P"}
	if len(got.Annotations) != len(wantAnn) {
		t.Errorf("annotations = %v, want %v", got.Annotations, wantAnn)
	}
	for k, v := range wantAnn {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}
	if !got.Vendor.Kept {
		t.Errorf("unknown field lost:\n%s", data)
	}
	if err := c.derived.finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("derived bundle still there after finish: %v", err)
	}
}

func TestPolicyCommandNoDerivedBundle(t *testing.T) {
	bundle := writeBundle(t)
	for _, flags := range [][]string{
		nil,
		{"--ckpt-file=%N.ckpt"}, // the default: still an explicit annotation, so a bundle
	} {
		root := t.TempDir()
		c, fs := fetchCreate(t, testConfig(t, root), bundle, flags...)
		entries, _ := os.ReadDir(root)
		derived := c.derived != nil || len(entries) > 0 || fs.Lookup("bundle").Value.String() != bundle
		if derived != (len(flags) > 0) {
			t.Errorf("flags %q: derived bundle %v, entries %v, --bundle %q", flags, c.derived, entries, fs.Lookup("bundle").Value.String())
		}
		if c.derived != nil {
			if err := c.derived.finish(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// An annotation already in the bundle wins over the flag: nothing to add.
	dir := writeBundle(t)
	withAnn := strings.Replace(testBundleConfig, `"org.example": "x"`, `"org.example": "x", "`+ckpt.AnnotationSignal+`": "41"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(withAnn), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	c, fs := fetchCreate(t, testConfig(t, root), dir, "--ckpt-signal=40")
	if c.derived != nil || fs.Lookup("bundle").Value.String() != dir {
		t.Errorf("derived bundle made although the spec has %s", ckpt.AnnotationSignal)
	}
}

func TestDerivedBundleRestoresState(t *testing.T) {
	root := t.TempDir()
	d := &derivedBundle{rootDir: root, cid: "c1", dir: filepath.Join(root, derivedBundlePrefix+"c1_1"), userBundle: "rel/bundle"}
	if err := os.Mkdir(d.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(root, "c1_sandbox:c1")
	if err := os.WriteFile(base+".lock", nil, 0o640); err != nil {
		t.Fatal(err)
	}
	state := `{"id":"c1","bundleDir":` + strconvQuote(d.dir) + `,"status":"created","spec":{"ociVersion":"1.0.0"}}`
	if err := os.WriteFile(base+".state", []byte(state), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := d.finish(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(base + ".state")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got["bundleDir"] != "rel/bundle" || got["status"] != "created" || got["id"] != "c1" || got["spec"] == nil {
		t.Errorf("state after finish: %s", data)
	}
	if _, err := os.Stat(d.dir); !os.IsNotExist(err) {
		t.Errorf("derived bundle still there: %v", err)
	}

	// A state naming another bundle is left alone; a missing container is no error.
	other := []byte(`{"id":"c1","bundleDir":"/elsewhere"}`)
	if err := os.WriteFile(base+".state", other, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := d.finish(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(base + ".state"); !bytes.Equal(data, other) {
		t.Errorf("state of another bundle rewritten: %s", data)
	}
	d.cid = "gone"
	if err := d.finish(); err != nil {
		t.Errorf("finish for a container that is gone: %v", err)
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestHasRunAsRootCaps compares hasRunAsRootCaps with the CapEff line of /proc/self/status.
func TestHasRunAsRootCaps(t *testing.T) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var capEff uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			if capEff, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				t.Fatal(err)
			}
		}
	}
	const need = 1<<21 | 1<<18 | 1<<7 | 1<<6 // CAP_SYS_ADMIN, CAP_SYS_CHROOT, CAP_SETUID, CAP_SETGID
	if want := capEff&need == need; hasRunAsRootCaps() != want {
		t.Errorf("hasRunAsRootCaps() = %v, CapEff %#x says %v", !want, capEff, want)
	}
}
