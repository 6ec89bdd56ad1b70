package test

import "testing"

// TestObjProcAttrs: umask, oom_score_adj, the child-subreaper flag, the parent death signal, the
// membarrier registration and the supplementary groups (the thawer is root in the sandbox, so it
// may set them) come back after a thaw in a new sandbox and in the same one. Each differs from the
// thawer's own (umask 022, oom_score_adj 0, none of the rest).
func TestObjProcAttrs(t *testing.T) {
	guest := h.BuildC(t, "obj_attrs")
	const want = "umask=1 oom=1 subreaper=1 pdeath=1 membarrier=1 groups=1"
	thawNewAndSame(t, objThaw{guest: guest, img: "attrs.ckpt", want: want})
}
