package vfsfh

import (
	"errors"
	"fmt"
	"strings"
)

// ErrStale is matched (errors.Is) by every error Verify returns: the file a handle names is gone or
// is no longer the same, unchanged file. The sentry maps it to ESTALE.
var ErrStale = errors.New("stale file handle")

// Check selects which attributes Verify compares.
type Check uint32

// TimeSlack is how far apart CheckTimesNear lets times be (nanoseconds): 100 ms. Measured: a
// chmod inside a sandbox left the sentry's cached ctime 6.6 ms after the host's.
const TimeSlack = 100_000_000

// Checks. The file type is always compared.
const (
	// CheckSize compares st_size.
	CheckSize Check = 1 << iota
	// CheckTimes compares st_mtime and st_ctime (nanoseconds).
	CheckTimes
	// CheckInode compares device and inode numbers. These are only stable inside one sandbox (see
	// the package comment); use it for a thaw in the sandbox that froze.
	CheckInode
	// CheckPerm compares the permission bits of st_mode.
	CheckPerm
	// CheckTimesNear compares st_mtime and st_ctime up to TimeSlack: a file written or chmod'ed
	// inside a gVisor sandbox has the sentry's cached times there, and the host's (set by the
	// host kernel a little later or earlier) in the next sandbox. Ignored with CheckTimes.
	CheckTimesNear

	// CheckKind compares only the file type: "the path still names the same kind of file". Meant
	// for fds of files the process itself kept writing after the freeze (logs).
	CheckKind Check = 0
	// CheckContent is "same kind, same contents as far as attributes tell": type, size, mtime and
	// ctime. Meant for mappings stored by reference, whose bytes the image does not hold.
	CheckContent = CheckSize | CheckTimes
	// CheckAll compares everything a Handle holds except the path.
	CheckAll = CheckContent | CheckInode | CheckPerm
)

// StaleError says why a handle did not verify. It matches ErrStale.
type StaleError struct {
	Path   string // The path of the wanted handle.
	Reason string // What differed, e.g. "size 10 != 12", or why the file is gone.
}

// Error implements error.
func (e *StaleError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.Path, ErrStale, e.Reason)
}

// Is makes errors.Is(err, ErrStale) true.
func (e *StaleError) Is(target error) bool { return target == ErrStale }

// Gone returns the error for a file that cannot be found or opened any more: it wraps cause and
// matches ErrStale.
func Gone(want Handle, cause error) error {
	return &goneError{StaleError{Path: want.Path, Reason: fmt.Sprintf("gone: %v", cause)}, cause}
}

// goneError is a StaleError that also unwraps to the error that made the file unreachable.
type goneError struct {
	StaleError
	cause error
}

// Unwrap returns the cause.
func (e *goneError) Unwrap() error { return e.cause }

// Verify checks that have (the attributes of the file reopened by want.Path) is the file want
// describes, unchanged, comparing the file type and CheckContent's attributes. It returns nil or an
// error matching ErrStale.
func Verify(have, want Handle) error { return VerifyWith(have, want, CheckContent) }

// VerifyWith is Verify with an explicit choice of attributes; the file type is always compared.
func VerifyWith(have, want Handle, checks Check) error {
	var diffs []string
	if have.Type() != want.Type() {
		diffs = append(diffs, fmt.Sprintf("type %#o != %#o", have.Type(), want.Type()))
	}
	if checks&CheckPerm != 0 && have.Mode&^ModeTypeMask != want.Mode&^ModeTypeMask {
		diffs = append(diffs, fmt.Sprintf("permissions %#o != %#o", have.Mode&^ModeTypeMask, want.Mode&^ModeTypeMask))
	}
	if checks&CheckInode != 0 {
		if have.DevMajor != want.DevMajor || have.DevMinor != want.DevMinor {
			diffs = append(diffs, fmt.Sprintf("device %d:%d != %d:%d", have.DevMajor, have.DevMinor, want.DevMajor, want.DevMinor))
		}
		if have.Ino != want.Ino {
			diffs = append(diffs, fmt.Sprintf("inode %d != %d", have.Ino, want.Ino))
		}
	}
	if checks&CheckSize != 0 && have.Size != want.Size {
		diffs = append(diffs, fmt.Sprintf("size %d != %d", have.Size, want.Size))
	}
	if checks&CheckTimesNear != 0 && checks&CheckTimes == 0 {
		if d := have.MtimeNano - want.MtimeNano; d > TimeSlack || d < -TimeSlack {
			diffs = append(diffs, fmt.Sprintf("mtime %d != %d", have.MtimeNano, want.MtimeNano))
		}
		if d := have.CtimeNano - want.CtimeNano; d > TimeSlack || d < -TimeSlack {
			diffs = append(diffs, fmt.Sprintf("ctime %d != %d", have.CtimeNano, want.CtimeNano))
		}
	}
	if checks&CheckTimes != 0 {
		if have.MtimeNano != want.MtimeNano {
			diffs = append(diffs, fmt.Sprintf("mtime %d != %d", have.MtimeNano, want.MtimeNano))
		}
		if have.CtimeNano != want.CtimeNano {
			diffs = append(diffs, fmt.Sprintf("ctime %d != %d", have.CtimeNano, want.CtimeNano))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return &StaleError{Path: want.Path, Reason: "changed: " + strings.Join(diffs, ", ")}
}
