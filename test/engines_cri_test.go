package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/engines"
)

// TestEnginesCRI is the start of driving runsc-ckpt the way Kubernetes does, through CRI:
// containerd 2.x (built from the Go module proxy, test/engines) with runsc-ckpt as its runtime
// handler, and crictl for kubelet. It runs a pod sandbox under runsc-ckpt. Starting a container in
// the pod does not finish with containerd's runc shim (runsc's start gives the sandbox its own
// stdio, a pipe the shim reads to the end), so the checkpoint (`crictl checkpoint --export`, CRI
// CheckpointContainer) and the restore from the archive are not reached yet; docs/engines.md has
// the details. Run it with `make cri-test`.
func TestEnginesCRI(t *testing.T) {
	engines.EnsurePackages(t)
	tools := engines.BuildCRITools(t)
	env := engines.NewEnv(t, h.NewDir(t), h.Bin)
	t.Cleanup(func() { env.Cleanup(t) })
	archive := env.BuildImage(t)
	// Pods use the host's network namespace (there is no CNI here); the sandbox gets no network.
	runtime := env.NewRuntime(t, "runsc-ckpt-cri", "--network=none")
	ctd := env.StartCRIContainerd(t, tools, runtime)
	engines.MustRun(t, append(ctd.Ctr(), "image", "import", "--all-platforms", archive)...)
	crictl := ctd.Crictl()
	run := func(args ...string) string {
		return strings.TrimSpace(engines.MustRun(t, append(crictl, args...)...))
	}
	writeJSON := func(name string, v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(env.Dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	pod := writeJSON("pod.json", map[string]any{
		"metadata":      map[string]any{"name": "tick", "namespace": "default", "uid": "runsc-ckpt-test-pod"},
		"log_directory": filepath.Join(env.Dir, "pod-logs"),
		"linux": map[string]any{"security_context": map[string]any{
			"namespace_options": map[string]any{"network": 2}, // NODE: no CNI
		}},
	})
	podID := run("runp", pod)
	t.Cleanup(func() {
		engines.Run(nil, append(crictl, "stopp", podID)...)
		engines.Run(nil, append(crictl, "rmp", "--force", podID)...)
	})
	var status struct {
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(run("inspectp", "-o", "json", podID)), &status); err != nil {
		t.Fatal(err)
	}
	if status.Status.State != "SANDBOX_READY" {
		t.Fatalf("pod sandbox state %q, want SANDBOX_READY", status.Status.State)
	}
	// The pod sandbox is a runsc-ckpt sandbox.
	var created, started bool
	for _, l := range env.RuntimeArgv() {
		created = created || strings.Contains(l, " create --bundle ") && strings.HasSuffix(l, " "+podID)
		started = started || strings.HasSuffix(l, " start "+podID)
	}
	if !created || !started {
		t.Errorf("containerd did not create and start pod sandbox %s with runsc-ckpt:\n%s", podID, strings.Join(env.RuntimeArgv(), "\n"))
	}
}
