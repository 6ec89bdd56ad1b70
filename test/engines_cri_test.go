package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/engines"
)

// TestEnginesCRI drives runsc-ckpt the way Kubernetes does, through CRI: containerd 2.x (built
// from the Go module proxy, test/engines) with runsc-ckpt as its runtime handler, and crictl for
// kubelet. A pod runs under runsc-ckpt with a counting container in it (a subcontainer of the
// pod's sandbox), which is exec'd into and checkpointed with `crictl checkpoint --export` (CRI
// CheckpointContainer, what kubelet's checkpoint API calls); it keeps counting. Kubernetes
// restores by creating a container whose image is the checkpoint archive; containerd 2.4's CRI
// plugin has no such step, and the test checks the error it gives (docs/engines.md). Run it with
// `make cri-test`.
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

	// A container in the pod, counting.
	container := func(name, image string) string {
		return writeJSON(name+".json", map[string]any{
			"metadata": map[string]any{"name": name},
			"image":    map[string]any{"image": image},
			"command":  []string{"sh", "-c", tickScript},
			"log_path": name + ".log",
		})
	}
	cid := run("create", podID, container("tick", engines.ImageName), pod)
	run("start", cid)
	ex := func(t *testing.T, argv ...string) string {
		return engines.MustRun(t, append(append(crictl, "exec", cid), argv...)...)
	}
	tok, before := waitCount(t, ex, 5)

	// CheckpointContainer leaves the container running and writes the archive kubelet keeps.
	ckpt := filepath.Join(env.Dir, "checkpoint-tick.tar")
	run("checkpoint", "--export="+ckpt, cid)
	entries := engines.MustRun(t, "tar", "-tf", ckpt)
	for _, want := range []string{"checkpoint/checkpoint.img", "checkpoint/inventory.img", "config.dump", "spec.dump"} {
		if !strings.Contains("\n"+entries, "\n"+want+"\n") {
			t.Errorf("the checkpoint archive has no %s:\n%s", want, entries)
		}
	}
	checkContinues(t, ex, tok, before)

	// Kubernetes restores by creating a container from the archive; containerd has no such step.
	r := engines.Run(nil, append(crictl, "create", podID, container("tick-restored", ckpt), pod)...)
	if r.Err == nil {
		t.Fatalf("containerd %s created a container from a checkpoint archive; extend this test to start it and check its counter:\n%s",
			engines.Containerd2Version, r)
	}
	t.Logf("containerd %s cannot create a container from a checkpoint archive:\n%s", engines.Containerd2Version, r.Stderr)
	if !strings.Contains(r.Stderr, "failed to resolve image") || !strings.Contains(r.Stderr, ckpt) {
		t.Errorf("create from the archive failed otherwise than by not knowing the archive as an image:\n%s", r)
	}
}
