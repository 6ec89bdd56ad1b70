package ckpt

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

func inetAddr(s string) imgfmt.InetAddr {
	ap := netip.MustParseAddrPort(s)
	return imgfmt.InetAddr{Port: ap.Port(), Addr: ap.Addr().AsSlice()}
}

func tcpEnd(state imgfmt.InetState, local, remote string) imgfmt.InetEnd {
	return imgfmt.InetEnd{Family: 2, Type: 1, State: state, Local: inetAddr(local), Remote: inetAddr(remote)}
}

func inetMember(pid int32, ends ...imgfmt.InetEnd) objectMember {
	o := &imgfmt.Object{ID: 1, Body: &imgfmt.InetSocketObject{Ends: ends}}
	for i := range ends {
		o.FDs = append(o.FDs, imgfmt.ObjectFD{FD: int32(3 + i), Desc: uint32(i)})
	}
	return objectMember{pid: pid, obj: o}
}

func memberPIDs(ms []objectMember) []int32 {
	var pids []int32
	for _, m := range ms {
		pids = append(pids, m.pid)
	}
	return pids
}

func TestJoinTCPPeers(t *testing.T) {
	const (
		srv = "127.0.0.1:8080"
		cli = "127.0.0.1:40000"
	)
	for _, tc := range []struct {
		name   string
		groups map[uint64][]objectMember
		order  []uint64
		want   []string // The member pids of each remaining group, sorted.
	}{{
		name: "ends in two processes",
		groups: map[uint64][]objectMember{
			1: {inetMember(2, tcpEnd(imgfmt.InetReset, srv, cli))},
			2: {inetMember(3, tcpEnd(imgfmt.InetReset, cli, srv))},
		},
		order: []uint64{1, 2},
		want:  []string{"[2 3]"},
	}, {
		name: "an IPv6 listener's accepted socket and an IPv4 client",
		groups: map[uint64][]objectMember{
			1: {inetMember(2, imgfmt.InetEnd{Family: 10, Type: 1, State: imgfmt.InetReset, Local: inetAddr("[::ffff:127.0.0.1]:8080"), Remote: inetAddr("[::ffff:127.0.0.1]:40000")})},
			2: {inetMember(3, tcpEnd(imgfmt.InetReset, cli, srv))},
		},
		order: []uint64{1, 2},
		want:  []string{"[2 3]"},
	}, {
		name: "a pair in one process, one of its sockets also in another",
		groups: map[uint64][]objectMember{
			5: {inetMember(3, tcpEnd(imgfmt.InetReset, cli, srv))},
			7: {inetMember(2, tcpEnd(imgfmt.InetConnected, srv, cli), tcpEnd(imgfmt.InetConnected, cli, srv))},
		},
		order: []uint64{5, 7},
		want:  []string{"[2 3]"},
	}, {
		name: "a peer outside the tree stays reset; UDP and listeners are never joined",
		groups: map[uint64][]objectMember{
			1: {inetMember(2, tcpEnd(imgfmt.InetReset, srv, "10.0.0.9:5000"))},
			2: {inetMember(3, imgfmt.InetEnd{Family: 2, Type: 2, State: imgfmt.InetConnected, Local: inetAddr(cli), Remote: inetAddr(srv)})},
			3: {inetMember(2, tcpEnd(imgfmt.InetListening, srv, "0.0.0.0:0")), inetMember(4, tcpEnd(imgfmt.InetListening, srv, "0.0.0.0:0"))},
		},
		order: []uint64{1, 2, 3},
		want:  []string{"[2 4]", "[2]", "[3]"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			order := joinTCPPeers(tc.groups, tc.order)
			if len(order) != len(tc.want) || len(tc.groups) != len(tc.want) {
				t.Fatalf("order %v, groups %d; want the keys of %v", order, len(tc.groups), tc.want)
			}
			var got []string
			for _, k := range order {
				pids := memberPIDs(tc.groups[k])
				sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
				got = append(got, fmt.Sprint(pids))
			}
			sort.Strings(got)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("groups %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMergeObjectBody(t *testing.T) {
	// A connection whose ends two processes recorded to be reset comes back connected, each end
	// with its own unread bytes.
	a, b := tcpEnd(imgfmt.InetReset, "127.0.0.1:1", "127.0.0.1:2"), tcpEnd(imgfmt.InetReset, "127.0.0.1:2", "127.0.0.1:1")
	a.Data, b.Data = []byte("to-a"), []byte("to-b")
	// b had shut down writing (its FIN sent): the connection comes back half-closed.
	b.ShutWrite = true
	ms := []objectMember{inetMember(2, a), inetMember(3, b)}
	body, err := mergeObjectBody(ms, []descRef{{0, 0}, {1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	got := body.(*imgfmt.InetSocketObject)
	if len(got.Ends) != 2 || got.Ends[0].State != imgfmt.InetConnected || got.Ends[1].State != imgfmt.InetConnected ||
		string(got.Ends[0].Data) != "to-a" || string(got.Ends[1].Data) != "to-b" || got.Ends[0].ShutWrite || !got.Ends[1].ShutWrite {
		t.Errorf("merged connection: %+v", got.Ends)
	}
	if ms[0].obj.Body.(*imgfmt.InetSocketObject).Ends[0].State != imgfmt.InetReset {
		t.Error("merging changed an image's record")
	}

	// A socket pair's ends, each from the image that has it.
	unix := func(pid int32, ends ...string) objectMember {
		o := &imgfmt.Object{ID: 1, Body: &imgfmt.UnixSocketObject{Type: 1}}
		for i, q := range ends {
			b := o.Body.(*imgfmt.UnixSocketObject)
			b.Ends = append(b.Ends, imgfmt.UnixSocketEnd{Flags: imgfmt.UnixConnected, Queue: []imgfmt.UnixMessage{{Data: []byte(q)}}})
			o.FDs = append(o.FDs, imgfmt.ObjectFD{FD: int32(3 + i), Desc: uint32(i)})
		}
		return objectMember{pid: pid, obj: o}
	}
	us := []objectMember{unix(1, "to-parent"), unix(2, "to-child")}
	body, err = mergeObjectBody(us, []descRef{{0, 0}, {1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	if u := body.(*imgfmt.UnixSocketObject); len(u.Ends) != 2 || string(u.Ends[1].Queue[0].Data) != "to-child" {
		t.Errorf("merged pair: %+v", u.Ends)
	}

	// Images that disagree: an invalid image, never a panic.
	for name, tc := range map[string]struct {
		ms     []objectMember
		merged []descRef
	}{
		"three ends":       {[]objectMember{unix(1, "a", "b"), unix(2, "c")}, []descRef{{0, 0}, {0, 1}, {1, 0}}},
		"end out of range": {[]objectMember{unix(1, "a"), unix(2, "c")}, []descRef{{0, 0}, {1, 1}}},
		"other type": {[]objectMember{unix(1, "a"), {pid: 2, obj: &imgfmt.Object{ID: 1, Body: &imgfmt.UnixSocketObject{Type: 2, Ends: []imgfmt.UnixSocketEnd{{}}}}}},
			[]descRef{{0, 0}, {1, 0}}},
		"inet three ends": {[]objectMember{inetMember(1, a, b), inetMember(2, a)}, []descRef{{0, 0}, {0, 1}, {1, 0}}},
	} {
		if _, err := mergeObjectBody(tc.ms, tc.merged); !errors.Is(err, errInvalidImage) {
			t.Errorf("%s: %v, want an invalid image", name, err)
		}
	}

	// Other kinds: the first image's state, once.
	p := &imgfmt.PipeObject{Capacity: 4096, Data: []byte("abc")}
	pm := []objectMember{{pid: 1, obj: &imgfmt.Object{Body: p}}, {pid: 2, obj: &imgfmt.Object{Body: &imgfmt.PipeObject{Capacity: 4096, Data: []byte("abc")}}}}
	if body, err := mergeObjectBody(pm, []descRef{{0, 0}, {1, 0}}); err != nil || body != p {
		t.Errorf("pipe: %v, %v", body, err)
	}
}

func TestSharedCloneFlags(t *testing.T) {
	p := func(pid, fsOf int32) *treefmt.Process { return &treefmt.Process{PID: pid, FSOf: fsOf} }
	f := func(pid, filesOf, fsOf int32) *treefmt.Process {
		return &treefmt.Process{PID: pid, FilesOf: filesOf, FSOf: fsOf}
	}
	for _, tc := range []struct {
		name          string
		child, parent *treefmt.Process
		exact         bool
		want          uint64
	}{
		{"not shared", p(5, 0), p(1, 0), true, 0},
		{"shared with the parent", p(5, 1), p(1, 0), true, linux.CLONE_FS},
		{"shared through a lower pid", p(7, 1), p(5, 1), true, linux.CLONE_FS},
		{"shared with another process only", p(7, 2), p(5, 0), true, 0},
		{"no recorded parent", p(7, 1), nil, true, 0},
		{"a zombie parent", p(7, 5), &treefmt.Process{PID: 5, Zombie: &treefmt.ExitStatus{Code: 1}}, true, 0},
		{"fd table shared with the parent", f(5, 1, 0), f(1, 0, 0), true, linux.CLONE_FILES},
		{"fd table and fs context", f(5, 1, 1), f(1, 0, 0), true, linux.CLONE_FILES | linux.CLONE_FS},
		{"fd table, restore into a running sandbox", f(5, 1, 0), f(1, 0, 0), false, 0},
		{"fd table shared with another process only", f(7, 2, 0), f(5, 0, 0), true, 0},
	} {
		if got := sharedCloneFlags(tc.child, tc.parent, tc.exact); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestSiblingCloner(t *testing.T) {
	proc := func(pid, ppid, sid, fsOf, filesOf int32) *treefmt.Process {
		return &treefmt.Process{PID: pid, PPID: ppid, PGID: sid, SID: sid, FSOf: fsOf, FilesOf: filesOf}
	}
	// 1 is the init; 3 and 4 share a context (their cloner exited); 5 shares it too but is a
	// child of 3; 6 leads its own session; 8 shares 7's context but 7 is a zombie; 10's only
	// partner is in another session. 12 and 13 share an fd table only, 14 shares 12's table and
	// 11's context, 11 shares nothing with 12; 15 shares the init's fd table and 12's context.
	recs := []*treefmt.Process{proc(1, 0, 1, 0, 0), proc(3, 1, 1, 0, 0), proc(4, 1, 1, 3, 0), proc(5, 3, 1, 3, 0), proc(6, 1, 6, 3, 0),
		proc(7, 1, 1, 0, 0), proc(8, 1, 1, 7, 0), proc(9, 1, 9, 0, 0), proc(10, 1, 1, 9, 0),
		proc(11, 1, 1, 0, 0), proc(12, 1, 1, 0, 0), proc(13, 1, 1, 0, 12), proc(14, 1, 1, 11, 12), proc(15, 1, 1, 12, 1)}
	recs[5].Zombie = &treefmt.ExitStatus{Code: 1}
	nodes := map[int32]*restoreNode{}
	for _, r := range recs {
		nodes[r.PID] = &restoreNode{rec: r, pid: r.PID, task: new(kernel.Task)}
	}
	for _, tc := range []struct {
		pid, want int32
		flags     uint64
		exact     bool
	}{
		{4, 3, linux.CLONE_FS, true},      // a sibling with the same parent and session
		{5, 0, 0, true},                   // the context is its parent's: sharedCloneFlags' case
		{6, 3, linux.CLONE_FS, true},      // a session leader makes its own session after the clone
		{8, 0, 0, true},                   // the only other member is a zombie
		{10, 0, 0, true},                  // the only other member is in another session
		{3, 0, 0, true},                   // the lowest pid of the group has no lower member
		{13, 12, linux.CLONE_FILES, true}, // an fd table shared with a sibling only
		{13, 0, 0, false},                 // ... in a restore into a running sandbox: unshared
		{14, 12, linux.CLONE_FILES, true}, // the table from 12 beats the context from 11 (a lower pid)
		{15, 0, 0, true},                  // the parent gives the table; 12 gives only the context: no better
	} {
		got, flags := siblingCloner(nodes[tc.pid].rec, nodes[nodes[tc.pid].rec.PPID].rec, nodes, tc.exact)
		if (got == nil && tc.want != 0) || (got != nil && got.rec.PID != tc.want) {
			t.Errorf("pid %d: cloner %v, want %d", tc.pid, got, tc.want)
			continue
		}
		if want := tc.flags; got != nil {
			want |= linux.CLONE_PARENT
			if flags != want {
				t.Errorf("pid %d: flags %#x, want %#x", tc.pid, flags, want)
			}
		}
	}
	// A member not created yet cannot clone.
	nodes[3].pid, nodes[3].task = 0, nil
	if got, _ := siblingCloner(nodes[4].rec, nodes[1].rec, nodes, true); got != nil {
		t.Errorf("pid 4 with pid 3 not created: cloner %d", got.rec.PID)
	}
}
