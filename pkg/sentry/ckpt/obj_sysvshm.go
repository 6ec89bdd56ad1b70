package ckpt

import (
	"fmt"
	"sort"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/ipc"
	"gvisor.dev/gvisor/pkg/sentry/kernel/shm"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/usermem"
)

// SysV shared memory (ObjSysVShm): a segment the process attaches (a VMA named "SYSV<key>" whose
// inode number is the shmid, as in Linux) is recorded with its key, id, mode, size, IPC_RMID state
// and contents (read through its attachments; pages the host never committed are skipped), and
// its attachments become MapObject mappings. Segments the process does not attach are not part of
// it (they live in the IPC namespace, not in the process).
//
// Thaw, in the thawing IPC namespace:
//   - a segment with the recorded id, key and size exists (same sandbox, the segment outlived
//     the process, as SysV segments do): it is attached again, contents as they are now;
//   - the id is taken by another segment, or the key (not IPC_PRIVATE) by a segment with
//     another id: EEXIST, nothing created;
//   - else the segment is created with the recorded id, key, mode and size (gVisor hands out ids
//     in increasing order and has no way to ask for one: throw-away segments are created and
//     removed until the next id is the recorded one; an id below the namespace's last one is out
//     of reach: EEXIST), filled at commit, and marked removed again if it was.
// The owner and creator are the thawer.

// maxShmIDSteps bounds the throw-away segments a thaw creates to reach a recorded id.
const maxShmIDSteps = 1 << 16

// sysVShmID returns the shmid of a VMA that attaches a SysV segment ("SYSV%08d" of its key in
// gVisor; the inode number is the id), or ok false.
func sysVShmID(v *vma) (ipc.ID, bool) {
	if v.private || !strings.HasPrefix(v.path, "SYSV") || !v.fileBacked() {
		return 0, false
	}
	return ipc.ID(v.ino), true
}

// captureSysVShm turns p's attachments of SysV segments into MapObject mappings of sysv-shm
// objects. A segment that would carry more than imgfmt.MaxObjectData bytes stays stored by
// content (a private copy at thaw, as before format 1.2).
//
// Preconditions: the process's other threads are stopped; running on t's task goroutine.
func captureSysVShm(t *kernel.Task, p *imgfmt.Process, byStart map[uint64]*vma) error {
	byID := make(map[ipc.ID][]int)
	var ids []ipc.ID
	for i := range p.Mappings {
		m := &p.Mappings[i]
		v := byStart[m.Start]
		if v == nil || m.Kind != imgfmt.MapContent {
			continue
		}
		if id, ok := sysVShmID(v); ok {
			if _, seen := byID[id]; !seen {
				ids = append(ids, id)
			}
			byID[id] = append(byID[id], i)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	reg := t.IPCNamespace().ShmRegistry()
	for _, id := range ids {
		s := reg.FindByID(id)
		if s == nil {
			continue // Removed and gone from the registry: its memory stays a private copy.
		}
		ds, err := s.IPCStat(t)
		s.DecRef(t)
		if err != nil {
			return fmt.Errorf("SysV segment %d: %w", id, err)
		}
		b := &imgfmt.SysVShmObject{Key: int32(ds.ShmPerm.Key), ID: int32(id), Mode: uint32(ds.ShmPerm.Mode) & 0o777,
			Removed: ds.ShmPerm.Mode&linux.SHM_DEST != 0, Size: ds.ShmSegsz}
		pages, ok := mappedPages(t, p, byID[id], byStart, true)
		if !ok {
			continue
		}
		b.Runs = pagesToRuns(pages, b.Size)
		for _, i := range byID[id] {
			m := &p.Mappings[i]
			m.Kind, m.Contents, m.FileOffset = imgfmt.MapObject, nil, byStart[m.Start].offset
			b.Maps = append(b.Maps, m.Start)
		}
		p.Objects = append(p.Objects, imgfmt.Object{ID: uint32(len(p.Objects) + 1), Body: b})
	}
	return nil
}

// thawSysVShm finds or recreates the segment (see the comment at the top) in the prepare phase.
func thawSysVShm(t *kernel.Task, b *imgfmt.SysVShmObject) (*thawedObject, error) {
	reg := t.IPCNamespace().ShmRegistry()
	s, created, err := findOrMakeShm(t, reg, b)
	if err != nil {
		return nil, err
	}
	// The thawer must be allowed to attach it (each attachment's own mode is checked at commit).
	if _, err := s.ConfigureAttach(t, 0, shm.AttachOpts{Readonly: true}); err != nil {
		if created {
			s.MarkDestroyed(t)
		}
		s.DecRef(t)
		return nil, fmt.Errorf("attaching SysV segment %d: %w", b.ID, err)
	}
	committed := false
	th := &thawedObject{
		drop: func(t *kernel.Task) {
			if created && !committed {
				s.MarkDestroyed(t)
			}
			s.DecRef(t)
		},
		mapInto: func(t *kernel.Task, mp *imgfmt.Mapping, opts memmap.MMapOpts) error {
			a, err := s.ConfigureAttach(t, hostarch.Addr(mp.Start), shm.AttachOpts{Readonly: mp.Prot&imgfmt.ProtWrite == 0, Execute: mp.Prot&imgfmt.ProtExec != 0, Remap: true})
			if err != nil {
				return err
			}
			opts.Mappable, opts.MappingIdentity = a.Mappable, a.MappingIdentity
			opts.MaxPerms = a.MaxPerms
			_, err = t.MemoryManager().MMap(t, opts)
			return err
		},
		commit: func(t *kernel.Task) error {
			committed = true
			if !created {
				return nil
			}
			if err := fillShm(t, s, b); err != nil {
				return fmt.Errorf("filling SysV segment %d: %w", b.ID, err)
			}
			if b.Removed {
				s.MarkDestroyed(t)
			}
			return nil
		},
	}
	return th, nil
}

// findOrMakeShm returns (with a reference) the live segment the image names, or a new one with the
// recorded id, key, mode and size (created true).
func findOrMakeShm(t *kernel.Task, reg *shm.Registry, b *imgfmt.SysVShmObject) (*shm.Shm, bool, error) {
	if s := reg.FindByID(ipc.ID(b.ID)); s != nil {
		ds, err := s.IPCStat(t)
		if err == nil && int32(ds.ShmPerm.Key) == b.Key && ds.ShmSegsz == b.Size {
			return s, false, nil
		}
		s.DecRef(t)
		return nil, false, fmt.Errorf("SysV shm id %d is taken by another segment in this IPC namespace: %w", b.ID, linuxerr.EEXIST)
	}
	private := b.Key == linux.IPC_PRIVATE || b.Removed
	if !private {
		if s, err := reg.FindOrCreate(t, int32(t.ThreadGroup().ID()), ipc.Key(b.Key), 0, 0, false, false, false); err == nil || !linuxerr.Equals(linuxerr.ENOENT, err) {
			if s != nil {
				s.DecRef(t)
			}
			return nil, false, fmt.Errorf("SysV shm key %#x is taken by a segment with another id in this IPC namespace: %w", uint32(b.Key), linuxerr.EEXIST)
		}
	}
	create := func(key ipc.Key, size uint64, mode linux.FileMode, private bool) (*shm.Shm, error) {
		return reg.FindOrCreate(t, int32(t.ThreadGroup().ID()), key, size, mode, private, true, true)
	}
	destroy := func(s *shm.Shm) {
		s.MarkDestroyed(t)
		s.DecRef(t)
	}
	key := ipc.Key(b.Key)
	if b.Removed {
		key = linux.IPC_PRIVATE // A removed segment's key is no longer associated.
	}
	for step := 0; step < maxShmIDSteps; step++ {
		s, err := create(key, b.Size, linux.FileMode(b.Mode), private)
		if err != nil {
			return nil, false, fmt.Errorf("creating SysV segment %d: %w", b.ID, err)
		}
		switch id := int32(s.ID()); {
		case id == b.ID:
			return s, true, nil
		case id > b.ID:
			destroy(s)
			return nil, false, fmt.Errorf("SysV shm id %d is below the ids this IPC namespace hands out now (%d): %w", b.ID, id, linuxerr.EEXIST)
		case id < b.ID-1:
			// Move the namespace's last id on with a throw-away segment per step.
			destroy(s)
			for step < maxShmIDSteps {
				step++
				d, err := create(linux.IPC_PRIVATE, hostarch.PageSize, 0o600, true)
				if err != nil {
					return nil, false, fmt.Errorf("reaching SysV shm id %d: %w", b.ID, err)
				}
				last := int32(d.ID())
				destroy(d)
				if last >= b.ID-1 {
					break
				}
			}
		default: // id == b.ID-1: the next one is ours.
			destroy(s)
		}
	}
	return nil, false, fmt.Errorf("SysV shm id %d is out of reach in this IPC namespace: %w", b.ID, linuxerr.EEXIST)
}

// fillShm writes b's contents into the new segment s through a temporary mapping.
func fillShm(t *kernel.Task, s *shm.Shm, b *imgfmt.SysVShmObject) error {
	if len(b.Runs) == 0 {
		return nil
	}
	opts, err := s.ConfigureAttach(t, 0, shm.AttachOpts{})
	if err != nil {
		return err
	}
	m := t.MemoryManager()
	addr, err := m.MMap(t, opts)
	if err != nil {
		return err
	}
	defer m.MUnmap(t, addr, opts.Length)
	for _, r := range b.Runs {
		if _, err := m.CopyOut(t, addr+hostarch.Addr(r.Offset), r.Data, usermem.IOOpts{IgnorePermissions: true}); err != nil {
			return err
		}
	}
	return nil
}
