package ckpt

import (
	"fmt"
	"runtime/debug"
	"sort"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/runsc/version"
)

// buildManifest describes the stopped tree. Sharing is found by pointer identity while every
// process is parked: one *kernel.FDTable, *kernel.FSContext or *mm.MemoryManager used by two
// processes is shared (CLONE_FILES, CLONE_FS, CLONE_VM); one *vfs.FileDescription in two fds is one
// open file description; one dentry behind anonymous files is one object (both ends of a pipe).
// Image sizes and digests are filled in as the images are written.
//
// Preconditions: members are sorted by pid and settled (captured and parked, or zombies).
func buildManifest(t *kernel.Task, root int32, members []*treeMember) *treefmt.Manifest {
	k := t.Kernel()
	mono, real := k.MonotonicClock().Now().Nanoseconds(), k.RealtimeClock().Now().Nanoseconds()
	boot := k.Timekeeper().BootTime().Nanoseconds()
	m := &treefmt.Manifest{
		Format:         treefmt.FormatName,
		Version:        treefmt.Version,
		Created:        time.Unix(0, real).UTC().Format(time.RFC3339Nano),
		Clock:          &treefmt.Clock{MonotonicNS: mono, RealtimeNS: real, BootRealtimeNS: boot},
		Root:           root,
		Hostname:       t.UTSNamespace().HostName(),
		Platform:       platformName(t),
		RuntimeVersion: version.Version(),
		GVisorVersion:  gvisorVersion(),
	}
	firstFiles := make(map[*kernel.FDTable]int32)
	firstFS := make(map[*kernel.FSContext]int32)
	firstVM := make(map[any]int32)
	fileIDs := make(map[*vfs.FileDescription]string)
	objectIDs := make(map[*vfs.Dentry]string)
	var files []*treefmt.OpenFile
	var objects []*treefmt.Object
	fileByID := make(map[string]*treefmt.OpenFile)
	objByID := make(map[string]*treefmt.Object)

	for _, mem := range members {
		if mem.zombie != nil {
			m.Processes = append(m.Processes, zombieEntry(mem))
			continue
		}
		w := mem.work
		p := w.proc
		e := treefmt.Process{
			PID: mem.pid, PPID: p.Info.PPID, PGID: p.Info.PGID, SID: p.Info.SID,
			Comm:  p.Info.Name,
			Image: treefmt.ImageName(mem.pid),
		}
		for _, th := range p.Threads {
			e.TIDs = append(e.TIDs, th.TID)
		}
		sort.Slice(e.TIDs, func(i, j int) bool {
			// The leader first, then by tid.
			if (e.TIDs[i] == mem.pid) != (e.TIDs[j] == mem.pid) {
				return e.TIDs[i] == mem.pid
			}
			return e.TIDs[i] < e.TIDs[j]
		})
		if w.fdTable != nil {
			if of, ok := firstFiles[w.fdTable]; ok {
				e.FilesOf = of
			} else {
				firstFiles[w.fdTable] = mem.pid
			}
		}
		if w.fs != nil {
			if of, ok := firstFS[w.fs]; ok {
				e.FSOf = of
			} else {
				firstFS[w.fs] = mem.pid
			}
		}
		if w.mm != nil {
			if of, ok := firstVM[w.mm]; ok {
				e.VMOf = of
			} else {
				firstVM[w.mm] = mem.pid
			}
		}
		for _, f := range p.Files {
			id, ok := w.fds[f.FD]
			if !ok {
				continue // Closed between the capture of the table and of the identities: impossible while parked.
			}
			fd := treefmt.FD{FD: f.FD, Kind: fileKindName(f.Kind), Desc: f.Desc}
			if n, ok := containerStdio(id.ofd); ok { // freeze_tree_stdio.go
				fd.Stdio = &n
				if pg, ok := stdioForeground(id.ofd); ok && m.StdioForeground == 0 {
					m.StdioForeground = pg
				}
			}
			fid, ok := fileIDs[id.ofd]
			if !ok {
				fid = fmt.Sprintf("f%d", len(fileIDs)+1)
				fileIDs[id.ofd] = fid
				of := &treefmt.OpenFile{ID: fid, Kind: fd.Kind, Desc: f.Desc}
				files = append(files, of)
				fileByID[fid] = of
			}
			fd.File = fid
			ref := treefmt.FDRef{PID: mem.pid, FD: f.FD}
			fileByID[fid].FDs = append(fileByID[fid].FDs, ref)
			if anonymousKind(&f) {
				oid, ok := objectIDs[id.object]
				if !ok {
					oid = fmt.Sprintf("o%d", len(objectIDs)+1)
					objectIDs[id.object] = oid
					o := &treefmt.Object{ID: oid, Kind: fd.Kind, Desc: f.Desc}
					objects = append(objects, o)
					objByID[oid] = o
				}
				fd.Object = oid
				o := objByID[oid]
				o.FDs = append(o.FDs, ref)
				if !contains(o.Files, fid) {
					o.Files = append(o.Files, fid)
				}
			}
			e.FDs = append(e.FDs, fd)
		}
		m.Processes = append(m.Processes, e)
	}
	for _, of := range files {
		if len(of.FDs) > 1 {
			m.Files = append(m.Files, *of)
		}
	}
	for _, o := range objects {
		procs := make(map[int32]bool)
		for _, r := range o.FDs {
			procs[r.PID] = true
		}
		if len(procs) > 1 {
			m.Objects = append(m.Objects, *o)
		}
	}
	return m
}

// zombieEntry describes a zombie member.
func zombieEntry(mem *treeMember) treefmt.Process {
	e := treefmt.Process{PID: mem.pid, Zombie: mem.zombie}
	ns := mem.tg.PIDNamespace()
	if leader := mem.tg.Leader(); leader != nil {
		e.Comm = leader.Name()
		if p := leader.Parent(); p != nil {
			e.PPID = int32(ns.IDOfThreadGroup(p.ThreadGroup()))
		}
	}
	if pg := mem.tg.ProcessGroup(); pg != nil {
		e.PGID = int32(ns.IDOfProcessGroup(pg))
	}
	if s := mem.tg.Session(); s != nil {
		e.SID = int32(ns.IDOfSession(s))
	}
	return e
}

// anonymousKind reports whether f refers to an object without a path, which a thaw cannot reopen:
// an anonymous pipe, a socket, an eventfd, any other anonymous inode.
func anonymousKind(f *imgfmt.File) bool {
	switch f.Kind {
	case imgfmt.FileSocket, imgfmt.FileEventFD, imgfmt.FileOther:
		return true
	case imgfmt.FileFIFO:
		return f.Handle == nil
	}
	return false
}

// fileKindName names a file kind in the manifest.
func fileKindName(k imgfmt.FileKind) string {
	if name, ok := k.Name(); ok {
		return name
	}
	return "other"
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// gvisorVersion returns the gVisor module version this binary was built with.
func gvisorVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "gvisor.dev/gvisor" {
				return d.Version
			}
		}
	}
	return ""
}
