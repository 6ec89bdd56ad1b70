package treefmt

// Names the held restore init gives itself (its comm, prctl PR_SET_NAME), which the host reads
// with the sandbox's process list.
const (
	// HeldInitName is the held restore init's name while it waits for SIGUSR1: once the host sees
	// it, SIGUSR1 is blocked, so the release cannot kill it.
	HeldInitName = "restore-held"
	// RestoreInitName is the restore init's file name in a derived bundle, so its name while it
	// restores, and the held init's name once released (its code holds these bytes): the host's
	// wait for the thawed tree relies on it.
	RestoreInitName = "restore-init"
)

// HeldRestoreInit returns RestoreInit with a hold in front: it blocks SIGUSR1 (rt_sigprocmask),
// renames itself HeldInitName, and waits for SIGUSR1 (rt_sigtimedwait, again if anything else
// wakes it), writing nothing; then it renames itself restore-init and goes on as RestoreInit
// (opens DIR and thaws the tree). The thaw gives every process its checkpointed signal mask, so
// the block does not outlast it.
//
// It is the init of the template sandbox of a clock-continuing restore (runsc-ckpt's
// tree_restore_clock.go): the host checkpoints that sandbox while the init waits, rewrites the
// state file's clock, restores it and then releases the init. Writing nothing matters: a host
// regular file's offset would carry over into the restored sandbox's stdio. Code (GNU as, AT&T
// syntax; `as` and `objcopy -O binary -j .text` give the bytes below; the sigset lives in the red
// zone below the stack pointer, which RestoreInit's code then finds as the kernel left it):
//
//	_start: jmp 2f
//	held:   .asciz "restore-held"
//	init:   .asciz "restore-init"
//	2:      movq $0x200, -8(%rsp)                       # sigset: SIGUSR1 (10)
//	        xor %edi, %edi; lea -8(%rsp), %rsi          # SIG_BLOCK, &set
//	        xor %edx, %edx; mov $8, %r10d               # no old set, sigsetsize 8
//	        mov $14, %eax; syscall                      # rt_sigprocmask
//	        mov $15, %edi; lea held(%rip), %rsi         # PR_SET_NAME, "restore-held"
//	        mov $157, %eax; syscall                     # prctl
//	1:      lea -8(%rsp), %rdi; xor %esi, %esi          # &set, no siginfo
//	        xor %edx, %edx; mov $8, %r10d               # no timeout, sigsetsize 8
//	        mov $128, %eax; syscall                     # rt_sigtimedwait
//	        cmp $10, %rax; jne 1b                       # until SIGUSR1
//	        mov $15, %edi; lea init(%rip), %rsi         # PR_SET_NAME, "restore-init"
//	        mov $157, %eax; syscall                     # prctl; then RestoreInit's code
func HeldRestoreInit() []byte {
	hold := []byte{
		0xeb, 0x1a, 0x72, 0x65, 0x73, 0x74, 0x6f, 0x72, 0x65, 0x2d, 0x68, 0x65,
		0x6c, 0x64, 0x00, 0x72, 0x65, 0x73, 0x74, 0x6f, 0x72, 0x65, 0x2d, 0x69,
		0x6e, 0x69, 0x74, 0x00, 0x48, 0xc7, 0x44, 0x24, 0xf8, 0x00, 0x02, 0x00,
		0x00, 0x31, 0xff, 0x48, 0x8d, 0x74, 0x24, 0xf8, 0x31, 0xd2, 0x41, 0xba,
		0x08, 0x00, 0x00, 0x00, 0xb8, 0x0e, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf,
		0x0f, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x35, 0xbb, 0xff, 0xff, 0xff, 0xb8,
		0x9d, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x8d, 0x7c, 0x24, 0xf8, 0x31,
		0xf6, 0x31, 0xd2, 0x41, 0xba, 0x08, 0x00, 0x00, 0x00, 0xb8, 0x80, 0x00,
		0x00, 0x00, 0x0f, 0x05, 0x48, 0x83, 0xf8, 0x0a, 0x75, 0xe4, 0xbf, 0x0f,
		0x00, 0x00, 0x00, 0x48, 0x8d, 0x35, 0x99, 0xff, 0xff, 0xff, 0xb8, 0x9d,
		0x00, 0x00, 0x00, 0x0f, 0x05,
	}
	return staticELF(append(hold, restoreInitCode()...))
}
