package ckpt

import (
	"math"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// Register values no freeze writes (issue 13 item 3, the hostile-image catalogue in
// docs/security.md). A thaw loads registers through rt_sigreturn (thaw_regs.go), which forces the
// privilege level of cs, ignores ss and masks eflags to the bits a program may change: such values
// did not raise the program's privileges, but they thawed silently (a 32-bit code selector, a
// kernel selector, IOPL 3) or, for an instruction pointer outside the user range, thawed a program
// that died of SIGSEGV on its first instruction, after the point of no return. A freeze records the
// values the platform runs every thread with; anything else marks a crafted image: EINVAL, and the
// caller goes on.

// Segment selectors every thread of a 64-bit program runs with (gVisor's arch package; Linux's
// __USER_CS and __USER_DS).
const (
	userCS = 0x33
	userDS = 0x2b
)

// eflagsForbidden are the RFLAGS bits no user program can hold: IOPL (12-13), NT (14), VM (17),
// VIF (19), VIP (20), and the reserved bits (3, 5, 15, 22-63). Bit 1 (always 1 in the CPU) is not
// checked; rt_sigreturn sets it anyway.
const eflagsForbidden = uint64(1<<3 | 1<<5 | 3<<12 | 1<<14 | 1<<15 | 1<<17 | 1<<19 | 1<<20 | (math.MaxUint64 >> 22 << 22))

// checkThreadRegs refuses (EINVAL) a thread whose registers no freeze writes: an instruction
// pointer outside the canonical user range, code or stack selectors other than the 64-bit user
// ones, data selectors other than 0 or the user data selector, eflags with privileged or reserved
// bits.
func checkThreadRegs(p *imgfmt.Process) error {
	for i := range p.Threads {
		r := &p.Threads[i].Regs
		switch {
		case r.Rip >= 1<<47:
			return invalidf("thread %d: rip %#x is outside the user address range", i, r.Rip)
		case r.Cs != userCS || r.Ss != userDS:
			return invalidf("thread %d: cs %#x, ss %#x are not the 64-bit user selectors (%#x, %#x)", i, r.Cs, r.Ss, userCS, userDS)
		case !dataSelector(r.Ds) || !dataSelector(r.Es) || !dataSelector(r.Fs) || !dataSelector(r.Gs):
			return invalidf("thread %d: data selectors ds %#x es %#x fs %#x gs %#x", i, r.Ds, r.Es, r.Fs, r.Gs)
		case r.Eflags&eflagsForbidden != 0:
			return invalidf("thread %d: eflags %#x has privileged or reserved bits (%#x)", i, r.Eflags, r.Eflags&eflagsForbidden)
		}
	}
	return nil
}

// dataSelector reports whether v is a data segment selector a user thread may hold.
func dataSelector(v uint64) bool { return v == 0 || v == userDS }
