package ckpt

import (
	"errors"
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// epoll returns, for an epoll object another process's thaw has rebuilt already, that instance
// with the interests of this image added that it lacks; nil if o is not such an object.
func (s *treeShare) epoll(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, fds map[int32]*vfs.FileDescription) (*thawedObject, error) {
	if s == nil || o.Key == 0 || o.Descs() != 1 {
		return nil, nil
	}
	f, ok := s.epolls[o.Key]
	body, isEpoll := o.Body.(*imgfmt.EpollObject)
	if !ok || !isEpoll {
		return nil, nil
	}
	ep, ok := f.Impl().(*vfs.EpollInstance)
	if !ok {
		return nil, fmt.Errorf("object %d: key %#x names an epoll instance and another file: %w", o.ID, o.Key, errInvalidImage)
	}
	for _, in := range body.Interests {
		if err := addThawedInterest(t, ep, in, fds); err != nil && !errors.Is(err, linuxerr.EEXIST) {
			return nil, fmt.Errorf("object %d (shared epoll): %w", o.ID, err)
		}
	}
	f.IncRef()
	return &thawedObject{files: []*vfs.FileDescription{f}}, nil
}

// addEpoll registers th, the epoll instance just rebuilt for o, for the thaws of the other
// processes that have it.
func (s *treeShare) addEpoll(o *imgfmt.Object, th *thawedObject) {
	if s == nil || th == nil || o.Key == 0 || o.Kind() != imgfmt.ObjEpoll || len(th.files) != 1 || th.files[0] == nil {
		return
	}
	if _, ok := s.epolls[o.Key]; ok {
		return
	}
	th.files[0].IncRef()
	s.epolls[o.Key] = th.files[0]
}
