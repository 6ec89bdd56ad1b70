package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/subcommands"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/flag"
	"gvisor.dev/gvisor/runsc/specutils"
)

// A subcontainer's stdio under runc's contract
//
// runc's contract (which containerd's runc shim relies on) is that a container's stdio are the
// ones given to `create`; `start` only starts it, and the shim reads start's output to the end to
// report errors. runsc starts a subcontainer (one that joins a pod's sandbox, as every
// non-sandbox container of a Kubernetes pod does) with `start`'s own stdin, stdout and stderr
// instead, so the container writes into the shim's capture pipe, which then never ends, and the
// shim's Start never returns. runsc-ckpt keeps the create-time stdio of a subcontainer in a small
// holder process (this binary, argv[1] == stdioHolderArg) until `start` fetches them over a unix
// socket and starts the container with them, as runc keeps them in `runc init`.

// stdioHolderArg is argv[1] of the holder process.
const stdioHolderArg = "__runsc-ckpt-stdio-holder"

// stdioHolderSocket is the (abstract) unix socket name of the holder of container id in root.
func stdioHolderSocket(root, id string) string {
	sum := sha256.Sum256([]byte(root + "\x00" + id))
	return "@runsc-ckpt-stdio-" + hex.EncodeToString(sum[:12])
}

// keepsCreateStdio tells whether the container of spec needs its create-time stdio kept: a
// subcontainer without a terminal (with one, create already set the terminal up).
func keepsCreateStdio(c *container.Container) bool {
	return specutils.SpecContainerType(c.Spec) == specutils.ContainerTypeContainer &&
		(c.Spec.Process == nil || !c.Spec.Process.Terminal)
}

// startStdioHolder starts the holder of this process's stdio for container id in root.
func startStdioHolder(root, id string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ready, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer ready.Close()
	holder := exec.Command(self, stdioHolderArg, stdioHolderSocket(root, id), root, id)
	holder.Stdin, holder.Stdout, holder.Stderr = os.Stdin, os.Stdout, os.Stderr
	holder.ExtraFiles = []*os.File{w} // fd 3: closed once the socket listens
	holder.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	err = holder.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("starting the stdio holder: %w", err)
	}
	go func() { _ = holder.Wait() }()
	if _, err := ready.Read(make([]byte, 1)); err == nil {
		return fmt.Errorf("stdio holder: unexpected data on its ready pipe")
	}
	// EOF: it listens (or died; start then runs with its own stdio, as upstream).
	return nil
}

// stdioHolderMain is the holder process: it passes fds 0-2 to the first connection on socket and
// exits; it also exits when the container is gone from root (deleted before it was started).
func stdioHolderMain(args []string) int {
	if len(args) != 3 {
		return 2
	}
	socket, root, id := args[0], args[1], args[2]
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	ready := os.NewFile(3, "ready")
	ready.Close()
	if err != nil {
		return 1
	}
	defer l.Close()
	for {
		_ = l.SetDeadline(time.Now().Add(2 * time.Second))
		conn, err := l.AcceptUnix()
		if err == nil {
			rights := unix.UnixRights(0, 1, 2)
			_, _, err = conn.WriteMsgUnix([]byte{0}, rights, nil)
			conn.Close()
			if err == nil {
				return 0
			}
			continue
		}
		if matches, _ := filepath.Glob(runscStateGlob(root, id)); len(matches) == 0 {
			return 0 // the container was deleted
		}
	}
}

// fetchCreateStdio gets the create-time stdio of container id in root from its holder. ok is
// false if there is no holder.
func fetchCreateStdio(root, id string) (files []*os.File, ok bool, err error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: stdioHolderSocket(root, id), Net: "unix"})
	if err != nil {
		return nil, false, nil
	}
	defer conn.Close()
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(3*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, true, fmt.Errorf("receiving the create-time stdio: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, true, fmt.Errorf("receiving the create-time stdio: bad control message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 3 {
		return nil, true, fmt.Errorf("receiving the create-time stdio: %d fds (%v)", len(fds), err)
	}
	names := []string{"stdin", "stdout", "stderr"}
	for i, fd := range fds {
		files = append(files, os.NewFile(uintptr(fd), names[i]))
	}
	return files, true, nil
}

// createCommand is upstream's create, which also starts the stdio holder of a subcontainer.
type createCommand struct {
	cmd.Create
}

// Execute implements subcommands.Command.Execute.
func (c *createCommand) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	st := c.Create.Execute(ctx, f, args...)
	if st != subcommands.ExitSuccess || f.NArg() != 1 {
		return st
	}
	conf := args[0].(*config.Config)
	cont, err := container.Load(conf.RootDir, container.FullID{ContainerID: f.Arg(0)}, container.LoadOpts{})
	if err != nil {
		util.Fatalf("loading container: %v", err)
	}
	if keepsCreateStdio(cont) {
		if err := startStdioHolder(conf.RootDir, cont.ID); err != nil {
			util.Fatalf("create: %v", err)
		}
	}
	return st
}

// startCommand is upstream's start, which starts a subcontainer with its create-time stdio.
type startCommand struct {
	cmd.Start
}

// Execute implements subcommands.Command.Execute.
func (s *startCommand) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	if f.NArg() == 1 {
		conf := args[0].(*config.Config)
		files, ok, err := fetchCreateStdio(conf.RootDir, f.Arg(0))
		if err != nil {
			util.Fatalf("start: %v", err)
		}
		if ok {
			// Upstream's start hands os.Stdin, os.Stdout and os.Stderr to the subcontainer.
			os.Stdin, os.Stdout, os.Stderr = files[0], files[1], files[2]
		}
	}
	return s.Start.Execute(ctx, f, args...)
}
