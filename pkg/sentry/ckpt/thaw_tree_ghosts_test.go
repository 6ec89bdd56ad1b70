package ckpt

import (
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// ghostRestore makes an exact restore's nodes from procs (pid, ppid, pgid, sid); the first is the top.
func ghostRestore(exact bool, procs ...[4]int32) *treeRestore {
	r := &treeRestore{exact: exact, nodes: make(map[int32]*restoreNode)}
	for i, p := range procs {
		n := &restoreNode{rec: &treefmt.Process{PID: p[0], PPID: p[1], PGID: p[2], SID: p[3]}}
		r.nodes[p[0]] = n
		if i == 0 {
			r.top = n
		}
	}
	return r
}

func TestPlanGhosts(t *testing.T) {
	type want struct {
		session bool
		parent  int32
	}
	for _, tc := range []struct {
		name   string
		exact  bool
		procs  [][4]int32
		ghosts map[int32]want
		err    string
	}{
		{name: "every leader present", exact: true,
			procs: [][4]int32{{1, 0, 1, 1}, {2, 1, 2, 2}, {3, 2, 3, 2}, {4, 3, 3, 2}}, ghosts: map[int32]want{}},
		{name: "double-forked daemon: session and group 2 led by nobody", exact: true,
			procs:  [][4]int32{{1, 0, 1, 1}, {3, 1, 2, 2}, {4, 3, 2, 2}},
			ghosts: map[int32]want{2: {true, 1}}},
		{name: "a pipeline whose first process ended: group 5 in session 1", exact: true,
			procs:  [][4]int32{{1, 0, 1, 1}, {6, 1, 5, 1}, {7, 1, 5, 1}},
			ghosts: map[int32]want{5: {false, 1}}},
		{name: "a group of its own inside a ghost session", exact: true,
			procs:  [][4]int32{{1, 0, 1, 1}, {3, 1, 2, 2}, {5, 3, 4, 2}},
			ghosts: map[int32]want{2: {true, 1}, 4: {false, 2}}},
		{name: "a restore into a running sandbox makes no ghosts", exact: false,
			procs: [][4]int32{{1, 0, 1, 1}, {3, 1, 2, 2}}, ghosts: map[int32]want{}},
		{name: "a ghost session's member under a parent that is not the init", exact: true,
			procs: [][4]int32{{1, 0, 1, 1}, {3, 1, 3, 3}, {5, 1, 4, 4}, {6, 3, 4, 4}}, err: "not of the init"},
		{name: "the root in a ghost session", exact: true,
			procs: [][4]int32{{1, 0, 1, 9}}, err: "root process 1"},
		{name: "a member below its ghost session (wrapped)", exact: true,
			procs: [][4]int32{{1, 0, 1, 1}, {3, 1, 9, 9}}, err: "wrapped"},
		{name: "a ghost group across sessions", exact: true,
			procs: [][4]int32{{1, 0, 1, 1}, {2, 1, 2, 2}, {6, 1, 5, 1}, {7, 2, 5, 2}}, err: "spans sessions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ghostRestore(tc.exact, tc.procs...)
			err := r.planGhosts()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("planGhosts: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("planGhosts: %v", err)
			}
			if len(r.ghosts) != len(tc.ghosts) {
				t.Fatalf("ghosts %v, want %v", r.ghosts, tc.ghosts)
			}
			for id, w := range tc.ghosts {
				g := r.ghosts[id]
				if g == nil || g.session != w.session || g.parent != w.parent {
					t.Errorf("ghost %d: %+v, want %+v", id, g, w)
				}
			}
		})
	}
}
