package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gvisor.dev/gvisor/runsc/flag"
)

// runc's checkpoint and restore flags under gVisor
//
// Engines drive checkpoint/restore with runc's command line, whose flags are CRIU's options: the
// containerd runc shim (ctr, Docker) passes --work-path and, on request, --file-locks,
// --leave-running, --tcp-established, --ext-unix-sk, --shell-job, --empty-ns, --parent-path,
// --manage-cgroups-mode, --lazy-pages and --status-fd; restore adds --detach, --pid-file,
// --no-subreaper, --no-pivot; Podman adds --pre-dump, and on restore --lsm-profile and
// --lsm-mount-context. Upstream runsc defines only some of them, and the rest fail with "flag
// provided but not defined". gVisor saves the whole sandbox kernel (every process, file, lock,
// socket and namespace is sentry state), so most of these options have nothing to select: they
// are accepted and mean what the help text below says. docs/engines.md has the table.

// criuFlags holds runc's checkpoint/restore flags that upstream runsc does not define.
type criuFlags struct {
	parentPath  string
	tcp         bool
	extUnixSk   bool
	shellJob    bool
	fileLocks   bool
	preDump     bool
	cgroupsMode string
	emptyNS     stringList
	autoDedup   bool
	lazyPages   bool
	statusFD    int
	pageServer  string
	noPivot     bool
	lsmProfile  string
	lsmMountCtx string
}

// Which command a flag belongs to (runc's sets differ).
const (
	forCheckpoint = 1 << iota
	forRestore
)

// register defines on f every runc flag of the command side that f does not define yet (upstream
// defines some of them itself, e.g. --work-path and --no-subreaper).
func (c *criuFlags) register(f *flag.FlagSet, side int) {
	both := forCheckpoint | forRestore
	boolFlag := func(p *bool, name string, sides int, usage string) {
		if sides&side != 0 && f.Lookup(name) == nil {
			f.BoolVar(p, name, false, usage)
		}
	}
	stringFlag := func(p *string, name string, sides int, usage string) {
		if sides&side != 0 && f.Lookup(name) == nil {
			f.StringVar(p, name, "", usage)
		}
	}
	var workPath string
	stringFlag(&workPath, "work-path", both, "runc: directory for CRIU's logs (accepted; gVisor writes none)")
	stringFlag(&c.parentPath, "parent-path", forCheckpoint, "runc: image of a previous pre-dump; with --format=elf the checkpoint is incremental against the ELF checkpoint there (relative to --image-path; docs/incremental.md), otherwise ignored")
	boolFlag(&c.tcp, "tcp-established", both, "runc: allow established TCP connections (accepted; the sandbox's network stack is saved whole)")
	boolFlag(&c.extUnixSk, "ext-unix-sk", both, "runc: allow external UNIX sockets (accepted; sockets are sentry state)")
	boolFlag(&c.shellJob, "shell-job", both, "runc: allow shell jobs on a terminal (accepted; the terminal is sentry state)")
	boolFlag(&c.fileLocks, "file-locks", both, "runc: handle file locks (accepted; locks are sentry state and always saved)")
	boolFlag(&c.preDump, "pre-dump", forCheckpoint, "runc: dump memory only and leave the container running (--format=elf: a checkpoint the next one can name with --parent-path; otherwise writes no state: the next checkpoint is complete)")
	stringFlag(&c.cgroupsMode, "manage-cgroups-mode", both, "runc: soft, full, strict or ignore (accepted; the sandbox's cgroups are recreated from the spec)")
	if f.Lookup("empty-ns") == nil {
		f.Var(&c.emptyNS, "empty-ns", "runc: namespaces to create but not restore (accepted; namespaces are sentry state)")
	}
	boolFlag(&c.autoDedup, "auto-dedup", both, "runc: deduplicate memory images (accepted; there are no parent images)")
	boolFlag(&c.lazyPages, "lazy-pages", both, "runc: restore memory lazily; on restore the same as --background, on checkpoint the image is complete when the command returns")
	if side&forCheckpoint != 0 && f.Lookup("status-fd") == nil {
		f.IntVar(&c.statusFD, "status-fd", -1, "runc: file descriptor that gets a \\0 once the checkpoint is written (and is then closed)")
	}
	stringFlag(&c.pageServer, "page-server", forCheckpoint, "runc: CRIU page server ADDRESS:PORT (not supported: an error)")
	boolFlag(&c.noPivot, "no-pivot", forRestore, "runc: do not pivot_root (accepted; the sandbox's root is set up by gVisor)")
	stringFlag(&c.lsmProfile, "lsm-profile", forRestore, "runc: LSM profile TYPE:NAME (accepted; the sandbox has no host LSM profile per container)")
	stringFlag(&c.lsmMountCtx, "lsm-mount-context", forRestore, "runc: LSM mount context (accepted; not applied)")
}

// check rejects what runsc-ckpt cannot do at all.
func (c *criuFlags) check() error {
	if c.pageServer != "" {
		return fmt.Errorf("--page-server %q: not supported (gVisor writes its image itself, not through a CRIU page server)", c.pageServer)
	}
	switch c.cgroupsMode {
	case "", "soft", "full", "strict", "ignore":
	default:
		return fmt.Errorf("--manage-cgroups-mode %q: want soft, full, strict or ignore", c.cgroupsMode)
	}
	for _, ns := range c.emptyNS {
		for _, n := range strings.Split(ns, ",") {
			switch n {
			case "network", "ipc", "uts", "pid", "mount", "user", "cgroup":
			default:
				return fmt.Errorf("--empty-ns %q: not a namespace name", n)
			}
		}
	}
	return nil
}

// signalStatusFD tells the caller waiting on --status-fd that the image is complete (runc
// writes a \0 there once lazy pages can be served), then closes it.
func (c *criuFlags) signalStatusFD() error {
	if c.statusFD < 0 {
		return nil
	}
	f := os.NewFile(uintptr(c.statusFD), "status-fd")
	if f == nil {
		return fmt.Errorf("--status-fd %d: not a file descriptor", c.statusFD)
	}
	defer f.Close()
	if _, err := f.Write([]byte{0}); err != nil {
		return fmt.Errorf("--status-fd %d: %w", c.statusFD, err)
	}
	return nil
}

// inventoryFile is the file of a CRIU image directory that Podman looks for before it restores a
// container (it refuses with "a complete checkpoint for this container cannot be found" without
// it). runsc-ckpt writes it empty: the image is gVisor's, not CRIU's.
const inventoryFile = "inventory.img"

// writeEngineFiles adds to a finished image directory what engines check for.
func writeEngineFiles(imagePath string) error {
	p := filepath.Join(imagePath, inventoryFile)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return f.Close()
}

// stringList is a flag that may be given more than once.
type stringList []string

// String implements flag.Value.String.
func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value.Set.
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
