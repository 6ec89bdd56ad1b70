package test

import (
	"path/filepath"
	"strings"
	"testing"
)

// objEpollWant is what the thawed obj_epoll guest prints when every interest list is as it was.
const objEpollWant = "level=1 data64=1 oneshot=1 edge=1 renamed=1 dropped=1 nested=1 exclusive=1 keys=1 flags=1\n"

// TestObjEpoll: epoll instances come back with their interest lists (docs/notes-thaw.md, "epoll"):
// level-triggered, EPOLLONESHOT, EPOLLET and EPOLLEXCLUSIVE interests with their 64-bit data, two
// registrations of one file under different numbers, an interest whose fd was moved keeping its
// registered number, a nested instance, the instances' own flags; an interest on a file no fd
// refers to any more is dropped (inspect counts it). New sandbox and same sandbox.
func TestObjEpoll(t *testing.T) {
	guest := h.BuildC(t, "obj_epoll")
	thawNewAndSame(t, objThaw{guest: guest, img: "epoll.ckpt", want: "r=1 errno=0\n" + objEpollWant, exec: true, inspect: []string{
		"6 interests [fd 10 events 0x19 data 0x1111000000000010] [fd 10 as 16 events 0x2019 data 0x16] [fd 11 events 0x4000001c data 0x11] [fd 12 events 0x80000019 data 0x12]",
		"[fd 21 as 20 events 0x19 data 0x20] [fd 22 events 0x1c data 0x22], 1 dropped (file in no fd)",
		"2 interests [fd 13 events 0x19 data 0xb] [fd 15 events 0x10000019 data 0x15]",
	}})
}

// TestObjEpollImageFD: an interest on the fd the process froze itself through (a pipe then, the
// thawer's image file after the thaw, which epoll refuses) is left out and the thaw goes on; the
// other interests are kept.
func TestObjEpollImageFD(t *testing.T) {
	guest := h.BuildC(t, "obj_epoll_image")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "epoll-image.ckpt")
		frozenGuest(t, p, "r=0 errno=0", guest, img)
		if out := runTool(t, h.Bin, "inspect", img); !strings.Contains(out, "[fd 11 events 0x1c data 0x99]") {
			t.Errorf("inspect does not show the interest on the image fd:\n%s", out)
		}
		r := checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if want := "r=1 errno=0\nkept=1 left_out=1 image=1\n"; !strings.Contains(r.Stdout, want) {
			t.Errorf("thawed guest: want %q:\n%s", want, r)
		}
	})
}
