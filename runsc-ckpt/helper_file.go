package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// helperFile returns a read-only file (gVisor execs only those) of a sealed memfd named name
// holding the executable code: how the tiny in-container helpers (treefmt.FreezeHelper,
// treefmt.SignalHelper) reach a container as exec's FilePayload, without touching its rootfs.
func helperFile(name string, code []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("creating a memfd for %s: %w", name, err)
	}
	rw := os.NewFile(uintptr(fd), name)
	defer rw.Close()
	if _, err := rw.Write(code); err != nil {
		return nil, fmt.Errorf("writing %s: %w", name, err)
	}
	seals := unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(rw.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return nil, fmt.Errorf("sealing %s: %w", name, err)
	}
	ro, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", rw.Fd()))
	if err != nil {
		return nil, fmt.Errorf("reopening %s read-only: %w", name, err)
	}
	return ro, nil
}
