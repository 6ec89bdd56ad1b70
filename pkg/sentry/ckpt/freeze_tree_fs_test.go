package ckpt

import (
	"reflect"
	"testing"
)

func TestParseMountInfo(t *testing.T) {
	const info = `1 0 0:1 / / rw,noatime - overlay root rw,lowerdir=/a,upperdir=/b
7 1 0:6 / /tmp rw,nosuid,nodev - tmpfs none rw,mode=1777,size=1024k
8 1 0:7 / /my\040dir rw - tmpfs none rw
9 1 0:8 / /proc rw - proc proc rw
bad line
`
	got := parseMountInfo(info)
	want := []fsMount{
		{point: "/", fsType: "overlay", mountOpts: "rw,noatime", superOpts: "rw,lowerdir=/a,upperdir=/b"},
		{point: "/my dir", fsType: "tmpfs", mountOpts: "rw", superOpts: "rw"},
		{point: "/proc", fsType: "proc", mountOpts: "rw", superOpts: "rw"},
		{point: "/tmp", fsType: "tmpfs", mountOpts: "rw,nosuid,nodev", superOpts: "rw,mode=1777,size=1024k"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseMountInfo:\n got %+v\nwant %+v", got, want)
	}
	if got := keepOptions("rw,mode=1777,size=1024k,nr_inodes=5,uid=3", "size", "nr_inodes", "mode"); got != "mode=1777,size=1024k,nr_inodes=5" {
		t.Errorf("keepOptions = %q", got)
	}
	if got := keepOptions("rw,nosuid,nodev,relatime", "ro", "nosuid", "nodev", "noexec", "noatime"); got != "nosuid,nodev" {
		t.Errorf("keepOptions flags = %q", got)
	}
	if got := unescapeMountPath(`/a\134b\040c\09`); got != `/a\b c\09` {
		t.Errorf("unescapeMountPath = %q", got)
	}
}
