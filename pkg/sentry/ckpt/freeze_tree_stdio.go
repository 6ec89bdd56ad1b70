package ckpt

import (
	"reflect"
	"strconv"
	"strings"

	"gvisor.dev/gvisor/pkg/sentry/fsimpl/host"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/kernfs"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// The container's stdio in a tree checkpoint. A restore gives the new container's stdio to every
// fd whose open file description was the old container's stdio (docs/tree-format.md). Which
// descriptions those are cannot be told from fd numbers: a shell that ran `exec 3>&1 >>log` (or
// was frozen inside `echo x >> file`, between its dup2 calls) has the container's stdout on fd 3
// and a regular file on fd 1. The runtime gave the container its stdio as host fds, which gVisor
// imports (fdimport) as host-backed files keyed "host:N" by the fd number N they were given at,
// and marks restorable (exec'd processes' stdio is not); gVisor's own restore maps them back by
// that key. The key and the flag have no exported getter: they are read through the host inode's
// stateify fields (stateField; TestStateFieldsUsed fails if a gVisor bump renames them).

// hostInodeStateName is the stateify type name of gVisor's host-fd inode.
const hostInodeStateName = "pkg/sentry/fsimpl/host.inode"

// containerStdio returns N if file is the container's stdio fd N (0–2) as the runtime gave it at
// the container's start: a restorable host-backed file whose restore key is "host:N".
func containerStdio(file *vfs.FileDescription) (int32, bool) {
	d, ok := file.Dentry().Impl().(*kernfs.Dentry)
	if !ok {
		return 0, false
	}
	ino, ok := d.Inode().(stateifyObject)
	if !ok || ino.StateTypeName() != hostInodeStateName {
		return 0, false
	}
	if restorable, err := stateBool(ino, "restorable"); err != nil || !restorable {
		return 0, false
	}
	key, err := stateField(ino, "restoreKey")
	if err != nil {
		return 0, false
	}
	path, err := stateSubfield(key, "Path", reflect.String)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(path.String(), "host:"))
	if !strings.HasPrefix(path.String(), "host:") || err != nil || n < 0 || n > 2 {
		return 0, false
	}
	return int32(n), true
}

// stdioForeground returns the foreground process group of file, the container's stdio, when it is
// the container's terminal (a host TTY file: "terminal": true) and the controlling terminal of a
// session, by its id in that session's PID namespace. A restore sets it again
// (thaw_tree_stdio.go): else the job an interactive shell ran in the foreground would find itself
// in the background and stop at its next read of the terminal.
func stdioForeground(file *vfs.FileDescription) (int32, bool) {
	tty, ok := file.Impl().(*host.TTYFileDescription)
	if !ok {
		return 0, false
	}
	tg := tty.ThreadGroup()
	if tg == nil {
		return 0, false // No session has it as its controlling terminal.
	}
	pg, err := tg.ForegroundProcessGroup(tty.TTY())
	if err != nil || pg == nil {
		return 0, false
	}
	id := int32(tg.PIDNamespace().IDOfProcessGroup(pg))
	return id, id > 0
}

// hostInodeType returns a zero host inode for stateFieldsUsed: the type is unexported and reached
// through the exported TTYFileDescription's embedded description's inode field.
func hostInodeType() stateifyObject {
	fd, ok := reflect.TypeOf(host.TTYFileDescription{}).FieldByName("inode")
	if !ok || fd.Type.Kind() != reflect.Pointer {
		return nil
	}
	obj, _ := reflect.New(fd.Type.Elem()).Interface().(stateifyObject)
	return obj
}
