package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// captureRequest says what to capture besides the process itself.
type captureRequest struct {
	// at is where the freezing thread is (inside sys_checkpoint, or in task work).
	at threadPoint
	// image is the file the image goes to, if it is in the process's fd table (fds referring to
	// it are marked IsImage); nil for a ckpt-file.
	image *vfs.FileDescription
	// sigInfo is the signal that triggered the freeze, nil for sys_checkpoint.
	sigInfo *imgfmt.SigInfo
}

// captureProcess stops the other threads of t's process and captures the whole process into an
// imgfmt.Process (waiting for, and taking part in, any other freeze of the process that is already
// running). Mapping contents are not copied: each MapContent mapping's Contents reads the
// live address space, so the caller must encode the image before it calls resume on the returned
// siblingStop (which it must do on every path; on error captureProcess has resumed already).
//
// Preconditions: running on t's task goroutine.
func captureProcess(t *kernel.Task, req captureRequest) (*imgfmt.Process, *siblingStop, error) {
	stop, err := beginFreeze(t, req.at)
	if err != nil {
		return nil, nil, err
	}
	siblings, err := stop.stopSiblings(t)
	if err != nil {
		return nil, nil, err
	}
	p, err := captureStopped(t, req, siblings)
	if err != nil {
		stop.resume()
		return nil, nil, err
	}
	return p, stop, nil
}

// captureStopped captures the process once the siblings (whose states are given) are stopped.
func captureStopped(t *kernel.Task, req captureRequest, siblings []imgfmt.Thread) (*imgfmt.Process, error) {
	self, err := captureThread(t, req.at)
	if err != nil {
		return nil, err
	}
	p := &imgfmt.Process{
		Info:    captureInfo(t),
		Creds:   captureCreds(t),
		Threads: append([]imgfmt.Thread{self}, siblings...),
		SigInfo: req.sigInfo,
	}
	if p.Mappings, err = captureMappings(t, &p.VM); err != nil {
		return nil, fmt.Errorf("capturing memory: %w", err)
	}
	if err := refuseUnsupportedMappings(p.Mappings); err != nil {
		return nil, err
	}
	p.Auxv = captureVM(t, p.Mappings, &p.VM)
	if p.Files, p.Objects, err = captureFiles(t, req.image); err != nil {
		return nil, fmt.Errorf("capturing the fd table: %w", err)
	}
	if err = captureObjectMappings(t, p); err != nil {
		return nil, fmt.Errorf("capturing shared file mappings: %w", err)
	}
	if p.Signals, err = captureSignals(t, p.Threads); err != nil {
		return nil, fmt.Errorf("capturing signal state: %w", err)
	}
	if p.Cwd, err = captureCwd(t); err != nil {
		return nil, fmt.Errorf("capturing the working directory: %w", err)
	}
	if err = captureProcessObjects(t, p); err != nil {
		return nil, fmt.Errorf("capturing process-wide objects: %w", err)
	}
	return p, nil
}
