package ckpt

import (
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// TestMergeTerminalBody: a terminal of several images becomes one body with each merged end, the
// first image's settings, and none of the per-process controlling terminal flags; a process that
// led its session with the terminal as its controlling one gets a commit step, the others none.
func TestMergeTerminalBody(t *testing.T) {
	state := func(flags uint32, fg int32, ends ...imgfmt.TerminalEnd) *imgfmt.TerminalState {
		return &imgfmt.TerminalState{Ends: ends, Flags: flags, FgPGID: fg, Winsize: imgfmt.Winsize{Row: 24, Col: 80}}
	}
	master := &imgfmt.Object{ID: 1, Key: 7, Body: &imgfmt.TerminalObject{Index: 0, State: state(imgfmt.TerminalPacket, 0, imgfmt.TerminalMaster)}}
	leader := imgfmt.TerminalControlling | imgfmt.TerminalSessionLeader
	shell := &imgfmt.Object{ID: 1, Key: 7, Body: &imgfmt.TerminalObject{Replica: true, State: state(leader, 3, imgfmt.TerminalReplica)}}
	job := &imgfmt.Object{ID: 1, Key: 7, Body: &imgfmt.TerminalObject{Replica: true, State: state(imgfmt.TerminalControlling|imgfmt.TerminalForegroundOwn, 3, imgfmt.TerminalReplica)}}
	members := []objectMember{{pid: 1, obj: master}, {pid: 2, obj: shell}, {pid: 3, obj: job}}
	body, err := mergeTerminalBody(members, []descRef{{0, 0}, {1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	b := body.(*imgfmt.TerminalObject)
	if b.Replica || len(b.State.Ends) != 2 || b.State.Ends[1] != imgfmt.TerminalReplica || b.State.Flags != imgfmt.TerminalPacket || b.State.FgPGID != 0 || b.State.Winsize.Row != 24 {
		t.Errorf("merged body: %+v %+v", b, b.State)
	}
	if master.Body.(*imgfmt.TerminalObject).State.Ends[0] != imgfmt.TerminalMaster || len(master.Body.(*imgfmt.TerminalObject).State.Ends) != 1 {
		t.Error("the merge changed the first image's body")
	}
	use := &sharedUse{descs: []int{1}}
	if terminalControlCommit(shell, use) == nil {
		t.Error("the session leader gets no controlling terminal step")
	}
	if terminalControlCommit(job, use) != nil || terminalControlCommit(master, use) != nil {
		t.Error("a process that did not lead its session gets a controlling terminal step")
	}
	other := &imgfmt.Object{ID: 1, Key: 7, Body: &imgfmt.TerminalObject{Index: 5, State: state(0, 0, imgfmt.TerminalReplica)}}
	if _, err := mergeTerminalBody([]objectMember{{pid: 1, obj: master}, {pid: 4, obj: other}}, []descRef{{0, 0}, {1, 0}}); err == nil {
		t.Error("two terminals' images merged")
	}
}
