package treefmt

import (
	"encoding/binary"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
)

// RestoreInit returns a tiny static x86-64 ELF executable that restores a tree checkpoint as the
// init of a fresh container: `restore-init DIR` opens DIR and calls
// sys_checkpoint(CKPT_THAW_TREE, dirfd, -1, CKPT_TREE_SELF|CKPT_TREE_REPORT), becoming the tree's
// root process; if anything fails it writes one line to stderr and exits with status 5 (a failed
// restore has already written why, CKPT_TREE_REPORT, to the same stderr: the container's).
//
// It exists because the restorer must not take pids the tree needs: a Go program (checkpt) starts
// several threads at once, whose ids are the pids of the init's first children. This program has
// one thread and allocates nothing. Its code (GNU as, AT&T syntax; bytes below):
//
//	_start: mov (%rsp), %rcx; cmp $2, %rcx; jl fail       # argc >= 2
//	        mov 16(%rsp), %rdi                             # argv[1]
//	        mov $0x10000, %esi; xor %edx, %edx             # O_RDONLY|O_DIRECTORY
//	        mov $2, %eax; syscall                          # open
//	        test %rax, %rax; js fail
//	        mov %rax, %rsi; mov $4, %edi                   # dirfd, CKPT_THAW_TREE
//	        mov $0xffffffff, %edx; mov $6, %r10d           # pid -1, CKPT_TREE_SELF|CKPT_TREE_REPORT
//	        mov $1000, %eax; syscall                       # sys_checkpoint: no return on success
//	fail:   mov $2, %edi; lea msg(%rip), %rsi; mov $(msgend-msg), %edx
//	        mov $1, %eax; syscall                          # write(2, msg)
//	        mov $5, %edi; mov $231, %eax; syscall; hlt     # exit_group(5)
//	msg:    .ascii "runsc-ckpt restore: ...\n"
func RestoreInit() []byte { return staticELF(restoreInitCode()) }

// restoreInitCode is RestoreInit's code: position-independent (its one address is RIP-relative),
// so HeldRestoreInit runs it after its own.
func restoreInitCode() []byte {
	code := []byte{
		0x48, 0x8b, 0x0c, 0x24, 0x48, 0x83, 0xf9, 0x02, 0x7c, 0x32, 0x48, 0x8b,
		0x7c, 0x24, 0x10, 0xbe, 0x00, 0x00, 0x01, 0x00, 0x31, 0xd2, 0xb8, 0x02,
		0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x85, 0xc0, 0x78, 0x1a, 0x48, 0x89,
		0xc6, 0xbf, ckptabi.CKPT_THAW_TREE, 0x00, 0x00, 0x00, 0xba, 0xff, 0xff, 0xff, 0xff, 0x41,
		0xba, ckptabi.CKPT_TREE_SELF | ckptabi.CKPT_TREE_REPORT, 0x00, 0x00, 0x00, 0xb8, byte(ckptabi.SYS_checkpoint & 0xff), byte(ckptabi.SYS_checkpoint >> 8), 0x00, 0x00, 0x0f, 0x05,
		0xbf, 0x02, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x35, 0x19, 0x00, 0x00, 0x00,
		0xba, byte(len(restoreInitMsg)), 0x00, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05,
		0xbf, 0x05, 0x00, 0x00, 0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05,
		0xf4,
	}
	return append(code, restoreInitMsg...)
}

// restoreInitMsg is the restore init's own line when it fails (under 256 bytes: the code holds its
// length in one byte).
const restoreInitMsg = "runsc-ckpt restore: the restore init could not restore the tree\n"

// FreezeHelper returns a tiny static x86-64 ELF executable that the host's `checkpoint
// --format=elf` runs inside the container: it calls sys_checkpoint(CKPT_FREEZE_TREE, 1, 0, flags),
// so the sentry writes the tree stream of every process of its PID namespace to fd 1, then closes
// fd 1 (the host's reader sees the end of the stream) and waits for the host to confirm on fd 0 that it has stored the stream (one byte; end of file: it could
// not), and exits with status 0 once confirmed, EPIPE (32) if not, or the call's errno if the call
// failed (which the host turns into a message). With CKPT_TREE_KILL the sentry kills the
// container only after a 0 exit: a checkpoint the host failed to store leaves it running.
//
// A Go program did this before: starting the Go runtime inside the sandbox cost 0.1-0.6 s of every
// checkpoint. Code (GNU as, AT&T syntax; bytes below, flags patched in at offset 14):
//
//	_start: mov $3, %edi; mov $1, %esi; xor %edx, %edx    # CKPT_FREEZE_TREE, fd 1, pid 0
//	        mov $flags, %r10d; mov $1000, %eax; syscall    # sys_checkpoint
//	        test %rax, %rax; js 2f
//	        mov $1, %edi; mov $3, %eax; syscall            # close(1): the host sees the end
//	        xor %edi, %edi; lea -8(%rsp), %rsi             # read(0, below the stack, 1)
//	        mov $1, %edx; xor %eax, %eax; syscall
//	        cmp $1, %rax; jne 3f
//	        xor %edi, %edi; jmp 1f                         # confirmed: exit 0
//	3:      mov $32, %edi; jmp 1f                          # not confirmed: EPIPE
//	2:      mov %eax, %edi; neg %edi                       # exit status: -result = errno
//	1:      mov $231, %eax; syscall; hlt                   # exit_group
func FreezeHelper(flags uint32) []byte {
	code := []byte{
		0xbf, 0x03, 0x00, 0x00, 0x00, 0xbe, 0x01, 0x00, 0x00, 0x00, 0x31, 0xd2,
		0x41, 0xba, 0x00, 0x00, 0x00, 0x00, 0xb8, 0xe8, 0x03, 0x00, 0x00, 0x0f,
		0x05, 0x48, 0x85, 0xc0, 0x78, 0x2d, 0xbf, 0x01, 0x00, 0x00, 0x00, 0xb8,
		0x03, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x31, 0xff, 0x48, 0x8d, 0x74, 0x24,
		0xf8, 0xba, 0x01, 0x00, 0x00, 0x00, 0x31, 0xc0, 0x0f, 0x05, 0x48, 0x83,
		0xf8, 0x01, 0x75, 0x04, 0x31, 0xff, 0xeb, 0x0b, 0xbf, 0x20, 0x00, 0x00,
		0x00, 0xeb, 0x04, 0x89, 0xc7, 0xf7, 0xdf, 0xb8, 0xe7, 0x00, 0x00, 0x00,
		0x0f, 0x05, 0xf4,
	}
	binary.LittleEndian.PutUint32(code[14:], flags)
	return staticELF(code)
}

// staticELF wraps position-dependent code in a minimal ET_EXEC image: one PT_LOAD segment (read,
// execute) at 0x400000 holding the headers and the code, entry right after the headers.
func staticELF(code []byte) []byte {
	const (
		base   = 0x400000
		ehsize = 64
		phsize = 56
	)
	size := ehsize + phsize + len(code)
	b := make([]byte, ehsize+phsize, size)
	le := binary.LittleEndian
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* LE */, 1 /* version */})
	le.PutUint16(b[16:], 2)  // ET_EXEC
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)  // EV_CURRENT
	le.PutUint64(b[24:], base+ehsize+phsize)
	le.PutUint64(b[32:], ehsize) // e_phoff
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], 1) // e_phnum
	le.PutUint16(b[58:], 64)
	ph := b[ehsize:]
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 5) // PF_R|PF_X
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], uint64(size))
	le.PutUint64(ph[40:], uint64(size))
	le.PutUint64(ph[48:], 0x1000)
	return append(b, code...)
}
