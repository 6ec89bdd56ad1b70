package checkpt

import (
	"io"
	"os"
	"syscall"
)

// UsageText is checkpt's usage message (both modes).
const UsageText = checkptUsageTx + checkptTreeUsageTx

// Main runs checkpt with its arguments (without argv[0]) and returns its exit status; a successful
// thaw never returns.
func Main(args []string, stdin *os.File, stderr io.Writer) int {
	return checkptMain(args, stdin, stderr)
}

// Dispatch runs checkpt if args (os.Args) ask for it: argv[0]'s base name is "checkpt", or the
// first argument is "checkpt". It returns the exit status and true if it ran.
func Dispatch(args []string) (int, bool) { return checkptDispatch(args) }

// DescribeTreeErrno explains an errno of the tree types of sys_checkpoint.
func DescribeTreeErrno(e syscall.Errno) error { return describeTreeErrno(e) }
