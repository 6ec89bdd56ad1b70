package engines

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Daemon is an engine daemon the test started.
type Daemon struct {
	Name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

// startDaemon starts argv with output to logPath and waits until socket accepts connections.
func startDaemon(t *testing.T, name, logPath, socket string, argv ...string) *Daemon {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	tmp := filepath.Join(filepath.Dir(logPath), "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	// The engines (and the shims they start) put checkpoints being restored and exec specs into
	// $TMPDIR and do not always remove them.
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	d := &Daemon{Name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	deadline := time.Now().Add(CommandTimeout)
	for {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return d
		}
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("%s exited while starting: %v\n%s", name, err, tail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s within %v\n%s", name, socket, CommandTimeout, tail(logPath))
		}
	}
}

// Stop sends SIGTERM and waits for the daemon to exit (SIGKILL after 30 s).
func (d *Daemon) Stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not exit within 30 s of SIGTERM; killing it", d.Name)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// Log returns the end of the daemon's log, for failure messages.
func (d *Daemon) Log() string { return tail(d.log) }

// tail returns the last 60 lines of the file at path.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

// Containerd is a containerd with its own root, state and socket (CRI plugin off).
type Containerd struct {
	*Daemon
	Socket string
}

// StartContainerd starts containerd in e.Dir/containerd and stops it when t ends.
func (e *Env) StartContainerd(t *testing.T) *Containerd {
	t.Helper()
	dir := filepath.Join(e.Dir, "containerd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
# Collect garbage as soon as anything is deleted: Docker 20.10 deletes the checkpoint image it
# pulled out of containerd, and re-uploads the same bytes on start --checkpoint; a blob that
# is still there makes that upload fail with "already exists" (docs/engines.md).
[plugins."io.containerd.gc.v1.scheduler"]
  deletion_threshold = 1
  schedule_delay = "0s"
  pause_threshold = 0.5
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "containerd", filepath.Join(dir, "containerd.log"), sock, "containerd", "--config", cfg)
	t.Cleanup(func() { d.Stop(t) })
	return &Containerd{Daemon: d, Socket: sock}
}

// Ctr returns the argv prefix of ctr talking to c in namespace ns.
func (c *Containerd) Ctr(ns string) []string {
	return []string{"ctr", "--address", c.Socket, "--namespace", ns}
}

// Dockerd is a Docker daemon with its own data root, exec root and socket, using c as its
// containerd, with runsc-ckpt registered as runtime "runsc-ckpt" and, with the global flag
// --ckpt-format=elf in its runtimeArgs, as "runsc-ckpt-elf" (DockerELFRuntime).
type Dockerd struct {
	*Daemon
	Socket string
	// DataRoot is the daemon's --data-root (checkpoints are under containers/ID/checkpoints).
	DataRoot string
}

// DockerELFRuntime is the Docker runtime name under which runsc-ckpt writes ELF checkpoints.
const DockerELFRuntime = "runsc-ckpt-elf"

// StartDockerd starts dockerd in e.Dir/docker and stops it when t ends. Networking is off
// (--bridge=none --iptables=false): the test host may have no bridge support.
func (e *Env) StartDockerd(t *testing.T, c *Containerd) *Dockerd {
	t.Helper()
	dir := filepath.Join(e.Dir, "docker")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	cfg := filepath.Join(dir, "daemon.json")
	config := fmt.Sprintf(`{"runtimes": {"runsc-ckpt": {"path": %q}, %q: {"path": %q, "runtimeArgs": ["--ckpt-format=elf"]}}}`,
		e.Runtime, DockerELFRuntime, e.Runtime)
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	dataRoot := filepath.Join(dir, "data")
	d := startDaemon(t, "dockerd", filepath.Join(dir, "dockerd.log"), sock, "dockerd",
		"--config-file", cfg,
		"--data-root", dataRoot,
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", "unix://"+sock,
		"--containerd", c.Socket,
		"--bridge=none", "--iptables=false",
		"--experimental", // docker checkpoint needs it (Docker 20.10)
	)
	t.Cleanup(func() { d.Stop(t) })
	return &Dockerd{Daemon: d, Socket: sock, DataRoot: dataRoot}
}

// Docker returns the argv prefix of the docker client talking to d.
func (d *Dockerd) Docker() []string { return []string{"docker", "-H", "unix://" + d.Socket} }

// Podman returns the argv prefix of podman with its own storage and state in e.Dir/podman and
// e.RunDir/podman, the runtime wrapper as its runtime and runsc-ckpt's state root in
// e.Dir/podman/runsc (Podman passes no --root of its own), plus a --runtime-flag for each of
// runtimeFlags (NAME=VALUE, given to the runtime as the global flag --NAME=VALUE). Podman has no
// daemon, and runtime flags are not stored with a container: every command on a container must
// get the same ones.
func (e *Env) Podman(runtimeFlags ...string) []string {
	dir := filepath.Join(e.Dir, "podman")
	argv := []string{"podman",
		"--root", filepath.Join(dir, "root"),
		"--runroot", filepath.Join(e.RunDir, "podman"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--runtime", e.Runtime,
		"--runtime-flag", "root=" + filepath.Join(dir, "runsc"),
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}
	for _, f := range runtimeFlags {
		argv = append(argv, "--runtime-flag", f)
	}
	return argv
}
