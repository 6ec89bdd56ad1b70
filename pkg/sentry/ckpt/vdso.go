package ckpt

import (
	"crypto/sha256"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/loader/vdsodata"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

// Where a process's vDSO is and what it is, for freeze (which records it) and thaw (which checks
// it and moves the thawer's own vDSO there, thaw_vdso.go). gVisor gives the vDSO VMA no name, so
// its place is read from AT_SYSINFO_EHDR, by vdsoBase only.

// vdsoSize is the page-rounded size of this sentry's vDSO.
func vdsoSize() uint64 {
	return uint64(len(vdsodata.Binary)+hostarch.PageSize-1) &^ uint64(hostarch.PageSize-1)
}

// vdsoHash is the SHA-256 of this sentry's vDSO image, as freeze records it.
func vdsoHash() [32]byte {
	return sha256.Sum256(vdsodata.Binary)
}

// vdsoBase returns where m's vDSO starts (its AT_SYSINFO_EHDR), and false if m has none.
func vdsoBase(m *mm.MemoryManager) (uint64, bool) {
	for _, e := range m.Auxv() {
		if e.Key == linux.AT_SYSINFO_EHDR {
			return uint64(e.Value), true
		}
	}
	return 0, false
}

// vdsoRange is [vvar, vDSO end) for a vDSO at base: the one-page [vvar] sits directly below.
func vdsoRange(base uint64) hostarch.AddrRange {
	return hostarch.AddrRange{Start: hostarch.Addr(base - hostarch.PageSize), End: hostarch.Addr(base + vdsoSize())}
}

// currentVDSO returns [vvar, vDSO end) of m, or an empty range if m has no vDSO.
func currentVDSO(m *mm.MemoryManager) hostarch.AddrRange {
	base, ok := vdsoBase(m)
	if !ok {
		return hostarch.AddrRange{}
	}
	return vdsoRange(base)
}
