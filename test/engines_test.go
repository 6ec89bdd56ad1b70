package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/test/engines"
)

// TestEngines drives runsc-ckpt through the real engines, each started by the test with its own
// state (test/engines): containerd with ctr, Docker (on the same containerd) and Podman. For each:
// a container running a counter is run and exec'd into, checkpointed, removed or stopped,
// restored, and its counter continues from where it was (same run token, no gap, no repeat);
// SIGCKPT (signal 62) sent through the engine makes the counter's shell write an image inside the
// container, which `runsc-ckpt inspect` accepts. The command lines each engine ran the runtime
// with are logged (go test -v) and documented in docs/engines.md.
func TestEngines(t *testing.T) {
	engines.EnsurePackages(t)
	env := engines.NewEnv(t, h.NewDir(t), h.Bin)
	t.Cleanup(func() { env.Cleanup(t) }) // last: after every engine has stopped
	archive := env.BuildImage(t)
	t.Cleanup(func() { engines.Run(nil, append(env.Podman(), "rm", "-af")...) })
	ctd := env.StartContainerd(t)

	// Each engine twice: with the default (upstream) checkpoint format, and with the runtime
	// registered with --ckpt-format=elf in its runtime arguments (engines_elf_test.go).
	t.Run("containerd", func(t *testing.T) { testContainerd(t, env, ctd, archive, gvisorFormat) })
	t.Run("containerd-elf", func(t *testing.T) { testContainerd(t, env, ctd, archive, elfFormat) })
	dockerd := env.StartDockerd(t, ctd)
	t.Run("docker", func(t *testing.T) { testDocker(t, env, ctd, dockerd, archive, gvisorFormat) })
	t.Run("docker-elf", func(t *testing.T) { testDocker(t, env, ctd, dockerd, archive, elfFormat) })
	t.Run("podman", func(t *testing.T) { testPodman(t, env, gvisorFormat) })
	t.Run("podman-elf", func(t *testing.T) { testPodman(t, env, elfFormat) })

	for _, l := range env.RuntimeArgv() {
		if !strings.Contains(l, " exec ") { // there are many; all are in the log file
			t.Logf("runtime argv: %s", l)
		}
	}
	if t.Failed() {
		t.Logf("containerd log:\n%s", ctd.Log())
		t.Logf("dockerd log:\n%s", dockerd.Log())
	}
}

// tickScript counts up in /c, one line "TOKEN N" every 0.1 s; TOKEN is random per run of the
// script, so a container that was started afresh instead of restored is told apart.
const tickScript = `t=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n'); i=0; ` +
	`while :; do i=$((i+1)); echo "$t $i" >> /c; sleep 0.1; done`

// execFn runs argv in the container and returns its stdout; it fails the test if that fails.
type execFn func(t *testing.T, argv ...string) string

// lastCount returns the token and the last value of the counter in /c (0 if none yet: on a loaded
// machine the first exec can come before the container's first line).
func lastCount(t *testing.T, ex execFn) (string, int) {
	t.Helper()
	f := strings.Fields(ex(t, "sh", "-c", "tail -n 1 /c 2>/dev/null; true"))
	if len(f) != 2 {
		return "", 0
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("/c ends with %q", f)
	}
	return f[0], n
}

// waitCount polls the counter until it reaches at least min and returns its token and value.
func waitCount(t *testing.T, ex execFn, min int) (string, int) {
	t.Helper()
	deadline := time.Now().Add(engines.CommandTimeout)
	for {
		tok, n := lastCount(t, ex)
		if n >= min {
			return tok, n
		}
		if time.Now().After(deadline) {
			t.Fatalf("the counter did not reach %d within %v (at %d)", min, engines.CommandTimeout, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkContinues waits until the restored counter has gone at least 10 past before (its value
// when the checkpoint was taken, or earlier), then checks the whole of /c: one run (token tok),
// counting 1, 2, 3, ... without a gap or a repeat.
func checkContinues(t *testing.T, ex execFn, tok string, before int) int {
	t.Helper()
	waitCount(t, ex, before+10)
	lines := strings.Split(strings.TrimSpace(ex(t, "cat", "/c")), "\n")
	for i, l := range lines {
		if want := fmt.Sprintf("%s %d", tok, i+1); l != want {
			t.Fatalf("/c line %d is %q, want %q (a gap, a repeat or a fresh start)\n%s", i+1, l, want, strings.Join(lines, "\n"))
		}
	}
	return len(lines)
}

// checkSigckpt sends SIGCKPT with kill and checks the counter's shell wrote its image /sh.ckpt
// (default --ckpt-file %N.ckpt in its working directory /) and kept counting.
func checkSigckpt(t *testing.T, dir string, ex execFn, kill func()) {
	t.Helper()
	kill()
	// The signal is pending once kill returns; the shell takes it (and writes the image) before
	// it counts again.
	_, n := lastCount(t, ex)
	waitCount(t, ex, n+2)
	image := ex(t, "cat", "/sh.ckpt")
	path := filepath.Join(dir, fmt.Sprintf("sigckpt-%d.ckpt", seq.Add(1)))
	if err := os.WriteFile(path, []byte(image), 0o644); err != nil {
		t.Fatal(err)
	}
	out := engines.MustRun(t, h.Bin, "inspect", path)
	if !strings.Contains(out, "sh") {
		t.Errorf("inspect of the SIGCKPT image does not name the shell:\n%s", out)
	}
}

var seq atomic.Int64

func testContainerd(t *testing.T, env *engines.Env, ctd *engines.Containerd, archive string, f engineFormat) {
	ctr := ctd.Ctr("runsc-ckpt-test")
	runtime := env.Runtime
	if f.elf {
		// The runc shim's options have no argument list: a wrapper adds the global flag.
		runtime = env.NewRuntime(t, "runsc-ckpt-elf-runtime", "--ckpt-format=elf")
	}
	engines.MustRun(t, append(ctr, "image", "import", "--all-platforms", archive)...)
	run := func(args ...string) string { return engines.MustRun(t, append(ctr, args...)...) }
	exec := func(name string) execFn {
		return func(t *testing.T, argv ...string) string {
			id := fmt.Sprintf("e%d", seq.Add(1))
			return engines.MustRun(t, append(append(ctr, "task", "exec", "--exec-id", id, name), argv...)...)
		}
	}
	remove := func(name string) {
		engines.Run(nil, append(ctr, "task", "delete", "--force", name)...)
		engines.Run(nil, append(ctr, "containers", "delete", name)...)
	}
	tick, tick2 := "tick"+f.suffix, "tick2"+f.suffix
	t.Cleanup(func() { remove(tick); remove(tick2) })

	run("run", "-d", "--runc-binary", runtime, "--runc-root", filepath.Join(env.Dir, "ctr-runsc"),
		engines.ImageName, tick, "sh", "-c", tickScript)
	tok, before := waitCount(t, exec(tick), 5)
	if f.elf {
		exec(tick)(t, "sh", "-c", tmpFiles)
	}

	// The runc shim pauses the task, checkpoints with --leave-running and resumes it.
	ref := "localhost/tick-checkpoint" + f.suffix + ":1"
	run("containers", "checkpoint", "--task", tick, ref)
	if f.elf {
		checkCtrCheckpointELF(t, ctd, ref)
	}
	remove(tick)
	run("containers", "restore", "--live", tick2, ref)
	checkContinues(t, exec(tick2), tok, before)
	if f.elf {
		checkTmpFiles(t, exec(tick2))
	}

	if !f.elf { // SIGCKPT does not depend on the checkpoint format.
		checkSigckpt(t, env.Dir, exec(tick2), func() { run("task", "kill", "--signal", sigckptArg, tick2) })
	}
}

// waitCheckpointBlobsGone waits until containerd has collected the blobs that `docker checkpoint
// create` left in its content store (those in blobs() but not in old). Docker 20.10 deletes the
// checkpoint image but not its blobs; containerd's garbage collector removes them shortly after.
// Until it has, `docker start --checkpoint` uploads the same tar again and fails with "content
// ... already exists" (a Docker 20.10 bug; later versions accept an existing blob).
func waitCheckpointBlobsGone(t *testing.T, blobs func() map[string]bool, old map[string]bool) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for polls := 0; ; polls++ {
		var left []string
		for d := range blobs() {
			if !old[d] {
				left = append(left, d)
			}
		}
		if len(left) == 0 {
			t.Logf("checkpoint blobs collected after %v (%d polls)", time.Since(start), polls)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd still holds the checkpoint blobs %v 30 s after docker checkpoint create", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testDocker(t *testing.T, env *engines.Env, ctd *engines.Containerd, dockerd *engines.Dockerd, archive string, f engineFormat) {
	docker := dockerd.Docker()
	run := func(args ...string) string { return engines.MustRun(t, append(docker, args...)...) }
	run("load", "-i", archive)
	tick, runtime := "tick"+f.suffix, "runsc-ckpt"
	if f.elf {
		runtime = engines.DockerELFRuntime // registered with runtimeArgs ["--ckpt-format=elf"]
	}
	ex := func(t *testing.T, argv ...string) string {
		return engines.MustRun(t, append(append(docker, "exec", tick), argv...)...)
	}
	t.Cleanup(func() { engines.Run(nil, append(docker, "rm", "-f", tick)...) })

	run("run", "-d", "--name", tick, "--runtime", runtime, "--network", "none",
		engines.ImageName, "sh", "-c", tickScript)
	tok, before := waitCount(t, ex, 5)
	if f.elf {
		ex(t, "sh", "-c", tmpFiles)
	}

	blobs := func() map[string]bool {
		m := map[string]bool{}
		for _, d := range strings.Fields(engines.MustRun(t, append(ctd.Ctr("moby"), "content", "ls", "-q")...)) {
			m[d] = true
		}
		return m
	}
	old := blobs()
	run("checkpoint", "create", tick, "cp1")
	waitCheckpointBlobsGone(t, blobs, old)
	if s := strings.TrimSpace(run("inspect", "-f", "{{.State.Running}}", tick)); s != "false" {
		t.Fatalf("after checkpoint create the container is running=%s, want false", s)
	}
	if f.elf {
		id := strings.TrimSpace(run("inspect", "-f", "{{.Id}}", tick))
		checkELFDir(t, filepath.Join(dockerd.DataRoot, "containers", id, "checkpoints", "cp1"))
	}
	run("start", "--checkpoint", "cp1", tick)
	checkContinues(t, ex, tok, before)
	if f.elf {
		checkTmpFiles(t, ex)
	}

	if !f.elf {
		checkSigckpt(t, env.Dir, ex, func() { run("kill", "-s", sigckptArg, tick) })
	}
}

func testPodman(t *testing.T, env *engines.Env, f engineFormat) {
	if f.elf {
		testPodmanELF(t, env)
		return
	}
	podman := env.Podman()
	run := func(args ...string) string { return engines.MustRun(t, append(podman, args...)...) }
	exec := func(name string) execFn {
		return func(t *testing.T, argv ...string) string {
			return engines.MustRun(t, append(append(podman, "exec", name), argv...)...)
		}
	}
	running := func(name string) string {
		return strings.TrimSpace(run("inspect", "-f", "{{.State.Running}}", name))
	}

	run("run", "-d", "--name", "tick", "--network", "none", engines.ImageName, "sh", "-c", tickScript)
	tok, before := waitCount(t, exec("tick"), 5)

	// Checkpoint stops the container; restore brings it back in place.
	run("container", "checkpoint", "tick")
	if s := running("tick"); s != "false" {
		t.Fatalf("after checkpoint the container is running=%s, want false", s)
	}
	run("container", "restore", "tick")
	n := checkContinues(t, exec("tick"), tok, before)

	// --leave-running: the container keeps counting, from the same run.
	run("container", "checkpoint", "--leave-running", "tick")
	if s := running("tick"); s != "true" {
		t.Fatalf("after checkpoint --leave-running the container is running=%s, want true", s)
	}
	n = checkContinues(t, exec("tick"), tok, n)

	// --export to a tarball, remove the container, --import it under another name.
	tarball := filepath.Join(env.Dir, "podman-checkpoint.tar")
	run("container", "checkpoint", "--export", tarball, "tick")
	run("rm", "tick")
	run("container", "restore", "--import", tarball, "--name", "tick2")
	checkContinues(t, exec("tick2"), tok, n)

	// Podman's own signal table has no SIGCKPT: the number goes through.
	checkSigckpt(t, env.Dir, exec("tick2"), func() { run("kill", "--signal", sigckptArg, "tick2") })
}
