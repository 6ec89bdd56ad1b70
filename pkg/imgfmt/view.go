package imgfmt

import "fmt"

// What the inspector (package inspect) shows of a decoded process that only the codec knows: the
// format revision an image has and each object's name and one-line description.

// FormatVersion returns the format revision ("1.2") an image of p has: the lowest that can express it.
func FormatVersion(p *Process) string { return fmt.Sprintf("%d.%d", FormatMajor, imageMinor(p)) }

// KindName names the object's kind ("pipe", "unix-socket", ...).
func (o *Object) KindName() string { return objectKindName(o.Kind()) }

// Detail describes the object in one line, for people.
func (o *Object) Detail() string { return o.Body.describe() }

// fileKindNames are the names of the file kinds, by value.
var fileKindNames = [...]string{FileRegular: "regular", FileDirectory: "directory", FileCharDev: "chardev",
	FileBlockDev: "blockdev", FileFIFO: "fifo", FileSocket: "socket", FileSymlink: "symlink", FileEventFD: "eventfd",
	FileOther: "other"}

// Name names the file kind ("regular", "fifo", ...); ok is false for a kind this codec does not know.
func (k FileKind) Name() (name string, ok bool) {
	if k > 0 && int(k) < len(fileKindNames) {
		return fileKindNames[k], true
	}
	return "", false
}
