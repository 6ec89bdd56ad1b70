package ckpt

import (
	"fmt"
	"path"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/socket/unix/transport"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Binding a thawed AF_UNIX socket to its name again (docs/sockets.md): abstract names through
// bind(2)'s own route, paths by recreating the socket file, replacing only a stale socket file.

// unixSockaddr returns the sockaddr_un bytes of addr.
func unixSockaddr(addr string) []byte {
	b := make([]byte, 2, 2+len(addr))
	hostarch.ByteOrder.PutUint16(b, linux.AF_UNIX)
	return append(b, addr...)
}

// bindUnix binds s to addr again: an abstract name through bind(2)'s own route, a path by
// recreating its socket file. A relative path is resolved against the image's working directory
// (the thawer's is still in place during prepare) but kept relative in the socket's address, as
// getsockname reported it.
func bindUnix(t *kernel.Task, p *imgfmt.Process, f *vfs.FileDescription, addr string) error {
	s := sock(f)
	if addr[0] == 0 {
		if err := s.Bind(t, unixSockaddr(addr)); err != nil {
			return sockErrno(err)
		}
		return nil
	}
	where := addr
	if !path.IsAbs(where) && p.Cwd != nil && path.IsAbs(p.Cwd.Path) && !strings.HasSuffix(p.Cwd.Path, " (deleted)") {
		where = path.Join(p.Cwd.Path, where)
	}
	root := t.FSContext().RootDirectory()
	defer root.DecRef(t)
	start := root
	if !path.IsAbs(where) {
		start = t.FSContext().WorkingDirectory()
		defer start.DecRef(t)
	}
	pop := &vfs.PathOperation{Root: root, Start: start, Path: fspath.Parse(where)}
	vfsObj, creds := t.Kernel().VFS(), t.Credentials()
	stale, err := staleUnixPath(t, pop, addr)
	if err != nil {
		return err
	}
	if stale {
		if err := vfsObj.UnlinkAt(t, creds, pop); err != nil {
			return fmt.Errorf("removing the stale socket file: %w", err)
		}
	}
	bep, ok := s.Endpoint().(transport.BoundEndpoint)
	if !ok {
		return fmt.Errorf("socket cannot be bound: %w", errUnsupportedObject)
	}
	stat, err := f.Stat(t, vfs.StatOptions{Mask: linux.STATX_MODE})
	if err != nil {
		return err
	}
	err = vfsObj.MknodAt(t, creds, pop, &vfs.MknodOptions{
		Mode:     linux.FileMode(linux.S_IFSOCK | uint(stat.Mode)&^t.FSContext().Umask()),
		Endpoint: bep,
	})
	if linuxerr.Equals(linuxerr.EEXIST, err) {
		return linuxerr.EADDRINUSE
	}
	if err != nil {
		return err
	}
	if serr := s.Endpoint().Bind(transport.Address{Addr: addr}); serr != nil {
		if uerr := vfsObj.UnlinkAt(t, creds, pop); uerr != nil {
			log.Warningf("ckpt: thaw: removing socket file %q after a failed bind: %v", where, uerr)
		}
		return sockErrno(serr)
	}
	return nil
}

// staleUnixPath reports whether the socket file at pop belongs to no socket any more (its socket
// was closed: a server that died leaves its file). A live socket there is EADDRINUSE; a missing
// file or one that is not a socket is left to mknod (EEXIST → EADDRINUSE).
func staleUnixPath(t *kernel.Task, pop *vfs.PathOperation, addr string) (bool, error) {
	bep, err := t.Kernel().VFS().BoundEndpointAt(t, t.Credentials(), pop, &vfs.BoundEndpointOptions{Addr: addr})
	if err != nil {
		if !linuxerr.Equals(linuxerr.ECONNREFUSED, err) {
			return false, nil
		}
		// ECONNREFUSED: a socket file without an endpoint (e.g. a synthetic one that outlived
		// its sandbox's socket), or a file that is not a socket at all — which must stay.
		stat, err := t.Kernel().VFS().StatAt(t, t.Credentials(), pop, &vfs.StatOptions{Mask: linux.STATX_TYPE})
		return err == nil && stat.Mode&linux.S_IFMT == linux.S_IFSOCK, nil
	}
	defer bep.Release(t)
	if ep, ok := bep.(transport.Endpoint); ok {
		if a, _ := ep.GetLocalAddress(); a.Addr == "" {
			return true, nil
		}
	}
	return false, linuxerr.EADDRINUSE
}
