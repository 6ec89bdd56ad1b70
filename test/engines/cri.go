package engines

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The CRI tools the Kubernetes test builds from the Go module proxy (Debian 12 has no containerd
// 2.x and no crictl).
const (
	Containerd2Module  = "github.com/containerd/containerd/v2"
	Containerd2Version = "v2.4.2"
	CritoolsModule     = "sigs.k8s.io/cri-tools"
	CritoolsVersion    = "v1.37.0"
)

// EnvCRIToolsDir names the directory the CRI tools are built into and kept between runs (default
// /var/cache/runsc-ckpt-engines/VERSIONS).
const EnvCRIToolsDir = "RUNSC_CKPT_CRI_TOOLS"

// BuildTimeout bounds one `go install` of a CRI tool. On a machine with an empty module and build
// cache, containerd's ~100 modules are downloaded and compiled first: more than CommandTimeout's 2
// minutes here (2026-12-03, a fresh VM: killed at 120 s while still downloading).
const BuildTimeout = 20 * time.Minute

// CRITools are the binaries of containerd 2.x and crictl.
type CRITools struct {
	// Dir holds containerd, containerd-shim-runc-v2 and crictl.
	Dir string
}

// BuildCRITools builds containerd (without the btrfs, devmapper and zfs snapshotters, which need
// cgo), its runc shim and crictl with `go install` into a cache directory, once: a later run finds
// them there. It skips t, saying why, if the modules cannot be fetched.
func BuildCRITools(t *testing.T) *CRITools {
	t.Helper()
	dir := os.Getenv(EnvCRIToolsDir)
	if dir == "" {
		dir = filepath.Join("/var/cache/runsc-ckpt-engines", "containerd-"+Containerd2Version+"-crictl-"+CritoolsVersion)
	}
	c := &CRITools{Dir: dir}
	if c.complete() {
		return c
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{
		Containerd2Module + "/cmd/containerd@" + Containerd2Version,
		Containerd2Module + "/cmd/containerd-shim-runc-v2@" + Containerd2Version,
		CritoolsModule + "/cmd/crictl@" + CritoolsVersion,
	} {
		r := RunTimeout(BuildTimeout, nil, "env", "GOBIN="+dir, "CGO_ENABLED=0", "go", "install", "-tags", "no_btrfs no_devmapper no_zfs", pkg)
		if r.Err != nil {
			if strings.Contains(r.Stderr, "dial tcp") || strings.Contains(r.Stderr, "proxy.golang.org") {
				t.Skipf("cannot fetch %s from the Go module proxy:\n%s", pkg, r)
			}
			t.Fatalf("building %s:\n%s", pkg, r)
		}
	}
	if !c.complete() {
		t.Fatalf("go install left %s incomplete", dir)
	}
	return c
}

// complete tells whether all three binaries are in c.Dir.
func (c *CRITools) complete() bool {
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "crictl"} {
		if _, err := os.Stat(filepath.Join(c.Dir, b)); err != nil {
			return false
		}
	}
	return true
}

// CRIContainerd is a containerd 2.x with its CRI plugin, its own root, state and socket, and the
// runtime handler "runsc-ckpt" (the runc shim running a runtime wrapper) as its default.
type CRIContainerd struct {
	*Daemon
	Socket string
	tools  *CRITools
}

// StartCRIContainerd starts containerd 2.x from tools in e.Dir/containerd2 with runtime as the
// binary of its default runtime handler runsc-ckpt, and stops it when t ends. Pods have no CNI
// network (they use the host's network namespace, and runtime is expected to give the sandbox
// none); the pod sandbox image is PauseImageName, to be imported with Ctr.
func (e *Env) StartCRIContainerd(t *testing.T, tools *CRITools, runtime string) *CRIContainerd {
	t.Helper()
	dir := filepath.Join(e.Dir, "containerd2")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 3
root = %q
state = %q
[debug]
  level = "debug"
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = %q
[plugins.'io.containerd.cri.v1.runtime']
  # The pod sandbox asks for oom_score_adj -998, which root without CAP_SYS_RESOURCE (e.g. in a
  # container) may not set; this keeps it at containerd's own.
  restrict_oom_score_adj = true
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runsc-ckpt"
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc-ckpt]
  runtime_type = "io.containerd.runc.v2"
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc-ckpt.options]
  BinaryName = %q
  Root = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", PauseImageName,
		runtime, filepath.Join(dir, "runsc"))
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// containerd finds its shim on $PATH: the one built with it comes first.
	d := startDaemon(t, "containerd 2", filepath.Join(dir, "containerd.log"), sock,
		"env", "PATH="+tools.Dir+":"+os.Getenv("PATH"), filepath.Join(tools.Dir, "containerd"), "--config", cfg)
	t.Cleanup(func() { d.Stop(t) })
	return &CRIContainerd{Daemon: d, Socket: sock, tools: tools}
}

// Crictl returns the argv prefix of crictl talking to c.
func (c *CRIContainerd) Crictl() []string {
	ep := "unix://" + c.Socket
	return []string{filepath.Join(c.tools.Dir, "crictl"), "--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "60s"}
}

// Ctr returns the argv prefix of (Debian's) ctr talking to c in CRI's namespace k8s.io.
func (c *CRIContainerd) Ctr() []string {
	return []string{"ctr", "--address", c.Socket, "--namespace", "k8s.io"}
}
