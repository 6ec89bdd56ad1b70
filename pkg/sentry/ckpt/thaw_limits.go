package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/limits"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Commit runs after the exec, when a failure can only kill the process. So everything commit does
// that the thawer's limits or the image file's filesystem could refuse is tried or checked here,
// before: resource limits (the address space against RLIMIT_AS and brk against RLIMIT_DATA: ENOMEM;
// fd numbers against RLIMIT_NOFILE: EMFILE) and whether the image and the files of reference mappings can be mapped at all.

// checkLimits refuses an image the thawing process's resource limits could not hold.
func checkLimits(t *kernel.Task, p *imgfmt.Process) error {
	ls := t.ThreadGroup().Limits()
	var total uint64
	for i := range p.Mappings {
		total += p.Mappings[i].End - p.Mappings[i].Start
	}
	total += vdsoSize() + hostarch.PageSize
	if as := ls.Get(limits.AS).Cur; as != limits.Infinity && total > as {
		return fmt.Errorf("the image maps %d bytes, RLIMIT_AS is %d: %w", total, as, linuxerr.ENOMEM)
	}
	if data := ls.Get(limits.Data).Cur; data != limits.Infinity && p.VM.BrkEnd-p.VM.BrkStart > data {
		return fmt.Errorf("the image's brk spans %d bytes, RLIMIT_DATA is %d: %w", p.VM.BrkEnd-p.VM.BrkStart, data, linuxerr.ENOMEM)
	}
	if n := len(p.Files); n > 0 {
		if nofile := ls.Get(limits.NumberOfFiles).Cur; nofile != limits.Infinity && uint64(p.Files[n-1].FD) >= nofile {
			return fmt.Errorf("the image has fd %d, RLIMIT_NOFILE is %d: %w", p.Files[n-1].FD, nofile, linuxerr.EMFILE)
		}
	}
	return nil
}

// checkMappable tries the file-mapping step of commit on f without mapping anything: the
// filesystem must support mmap for it (ConfigureMMap), with the offset and length a mapping uses.
func checkMappable(t *kernel.Task, f *vfs.FileDescription, offset, length uint64) error {
	opts := memmap.MMapOpts{Length: length, Offset: offset, Private: true, Perms: hostarch.Read, MaxPerms: hostarch.AnyAccess}
	if err := f.ConfigureMMap(t, &opts); err != nil {
		return err
	}
	if opts.MappingIdentity != nil {
		opts.MappingIdentity.DecRef(t)
	}
	return nil
}

// checkImageMappable checks that the image file can back the content mappings of p.
func checkImageMappable(t *kernel.Task, p *imgfmt.Process, image *vfs.FileDescription) error {
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if m.Kind != imgfmt.MapContent || m.Delta || eagerContent(m) || m.Name == vmaThawScratch {
			continue
		}
		if err := checkMappable(t, image, uint64(m.DataOffset), m.End-m.Start); err != nil {
			return fmt.Errorf("the image file cannot be mapped (mapping %d): %w", i, err)
		}
		// One content mapping tells for the file; the offsets were validated by the decoder.
		return nil
	}
	return nil
}
