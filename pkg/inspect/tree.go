package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// `inspect DIR` for a tree checkpoint (docs/tree-format.md): the manifest is validated, every image
// checked against its size and digest and decoded, and the whole checkpoint described: the tree
// (by parent), each process's summary, what its processes share.

// TreeSummary describes a tree checkpoint.
type TreeSummary struct {
	Dir      string            `json:"dir"`
	Manifest *treefmt.Manifest `json:"manifest"`
	// Digests are the algorithms of the manifest's digests ("crc32c-sparse", "sha256-sparse"),
	// every one of which was verified.
	Digests   []treefmt.DigestAlg `json:"digests"`
	Processes []TreeProcess       `json:"processes"`
	Totals    TreeTotals          `json:"totals"`
	images    map[int32]*Summary
}

// TreeProcess sums up one process of a tree checkpoint.
type TreeProcess struct {
	PID          int32               `json:"pid"`
	PPID         int32               `json:"ppid"`
	Comm         string              `json:"comm"`
	Args         string              `json:"args,omitempty"`
	Zombie       *treefmt.ExitStatus `json:"zombie,omitempty"`
	Stopped      *treefmt.Stop       `json:"stopped,omitempty"`
	Threads      int                 `json:"threads"`
	Mappings     int                 `json:"mappings"`
	FDs          int                 `json:"fds"`
	ContentBytes uint64              `json:"content_bytes"`
	ImageBytes   int64               `json:"image_bytes"`
	StoredBytes  int64               `json:"stored_bytes"`
}

// TreeTotals adds the processes of a tree checkpoint up.
type TreeTotals struct {
	Processes   int   `json:"processes"`
	Zombies     int   `json:"zombies"`
	Threads     int   `json:"threads"`
	ImageBytes  int64 `json:"image_bytes"`
	StoredBytes int64 `json:"stored_bytes"`
}

// Tree verifies and describes the tree checkpoint in dir.
func Tree(dir string) (*TreeSummary, error) {
	m, err := treefmt.VerifyDir(dir)
	if err != nil {
		return nil, err
	}
	s := &TreeSummary{Dir: dir, Manifest: m, Digests: m.DigestAlgs(), images: make(map[int32]*Summary)}
	for _, p := range m.Processes {
		ps := TreeProcess{PID: p.PID, PPID: p.PPID, Comm: p.Comm, Zombie: p.Zombie, Stopped: p.Stopped}
		s.Totals.Processes++
		if p.Zombie != nil {
			s.Totals.Zombies++
			s.Processes = append(s.Processes, ps)
			continue
		}
		is, err := File(filepath.Join(dir, p.Image))
		if err != nil {
			return nil, fmt.Errorf("pid %d: image %s: %w", p.PID, p.Image, err)
		}
		if is.Process.PID != p.PID {
			return nil, fmt.Errorf("pid %d: image %s holds pid %d", p.PID, p.Image, is.Process.PID)
		}
		s.images[p.PID] = is
		ps.Args, ps.Threads, ps.Mappings, ps.FDs = is.Process.Args, is.Totals.Threads, is.Totals.Mappings, is.Totals.FDs
		ps.ContentBytes, ps.ImageBytes, ps.StoredBytes = is.Totals.ContentBytes, is.ImageBytes, is.StoredBytes
		s.Totals.Threads += ps.Threads
		s.Totals.ImageBytes += ps.ImageBytes
		s.Totals.StoredBytes += ps.StoredBytes
		s.Processes = append(s.Processes, ps)
	}
	return s, nil
}

// WriteJSON writes s as JSON.
func (s *TreeSummary) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(s)
}

// WriteText writes s for people.
func (s *TreeSummary) WriteText(w io.Writer) error {
	m := s.Manifest
	root := "every process of the PID namespace"
	if m.Root != 0 {
		root = fmt.Sprintf("pid %d and its descendants", m.Root)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tree checkpoint %s (%s v%d)\n", s.Dir, m.Format, m.Version)
	fmt.Fprintf(&b, "  frozen     %s: %s\n", m.Created, root)
	fmt.Fprintf(&b, "  hostname   %s   platform %s\n", m.Hostname, m.Platform)
	fmt.Fprintf(&b, "  built by   %s (gVisor %s)\n", m.RuntimeVersion, m.GVisorVersion)
	if m.SpecSHA256 != "" {
		fmt.Fprintf(&b, "  spec       sha256:%s\n", m.SpecSHA256)
	}
	var algs []string
	for _, a := range s.Digests {
		algs = append(algs, fmt.Sprintf("%s (%s)", a, string(a)))
	}
	fmt.Fprintf(&b, "  digests    %s, verified\n", strings.Join(algs, " and "))
	fmt.Fprintf(&b, "  totals     %d processes (%d zombies), %d threads, images %s (%s stored)\n\n",
		s.Totals.Processes, s.Totals.Zombies, s.Totals.Threads, human(s.Totals.ImageBytes), human(s.Totals.StoredBytes))

	fmt.Fprintf(&b, "processes (pid ppid pgid sid):\n")
	children := make(map[int32][]int32)
	var tops []int32
	for _, p := range m.Processes {
		if p.PPID == 0 || m.Process(p.PPID) == nil {
			tops = append(tops, p.PID)
		} else {
			children[p.PPID] = append(children[p.PPID], p.PID)
		}
	}
	var walk func(pid int32, depth int)
	walk = func(pid int32, depth int) {
		p := m.Process(pid)
		fmt.Fprintf(&b, "  %s%d %d %d %d %s", strings.Repeat("  ", depth), p.PID, p.PPID, p.PGID, p.SID, p.Comm)
		if p.Zombie != nil {
			if p.Zombie.Signal != 0 {
				fmt.Fprintf(&b, "  <zombie: killed by signal %d>\n", p.Zombie.Signal)
			} else {
				fmt.Fprintf(&b, "  <zombie: exit status %d>\n", p.Zombie.Code)
			}
		} else if is := s.images[pid]; is != nil {
			fmt.Fprintf(&b, "  [%s]  threads %d, mappings %d, content %s, fds %d, image %s",
				is.Process.Args, is.Totals.Threads, is.Totals.Mappings, human(int64(is.Totals.ContentBytes)), is.Totals.FDs, p.Image)
			var shares []string
			for _, sh := range []struct {
				what string
				of   int32
			}{{"fd table", p.FilesOf}, {"fs context", p.FSOf}, {"address space", p.VMOf}} {
				if sh.of != 0 {
					shares = append(shares, fmt.Sprintf("%s of %d", sh.what, sh.of))
				}
			}
			if len(shares) > 0 {
				fmt.Fprintf(&b, "; shares the %s", strings.Join(shares, ", "))
			}
			if p.Stopped != nil {
				fmt.Fprintf(&b, "; stopped by %s", stopSignalName(p.Stopped.Signal))
			}
			b.WriteString("\n")
		}
		kids := children[pid]
		sort.Slice(kids, func(i, j int) bool { return kids[i] < kids[j] })
		for _, c := range kids {
			walk(c, depth+1)
		}
	}
	for _, pid := range tops {
		walk(pid, 0)
	}
	refs := func(fds []treefmt.FDRef) string {
		var out []string
		for _, r := range fds {
			out = append(out, fmt.Sprintf("%d:%d", r.PID, r.FD))
		}
		return strings.Join(out, " ")
	}
	if len(m.Files) > 0 {
		fmt.Fprintf(&b, "\nshared open file descriptions (pid:fd):\n")
		for _, f := range m.Files {
			fmt.Fprintf(&b, "  %-4s %-8s %-20s %s\n", f.ID, f.Kind, f.Desc, refs(f.FDs))
		}
	}
	if len(m.Objects) > 0 {
		fmt.Fprintf(&b, "\nshared objects (pid:fd):\n")
		for _, o := range m.Objects {
			fmt.Fprintf(&b, "  %-4s %-8s %-20s %s\n", o.ID, o.Kind, o.Desc, refs(o.FDs))
		}
	}
	if len(m.Filesystems) > 0 {
		fmt.Fprintf(&b, "\nin-sandbox filesystems:\n")
		for _, fa := range m.Filesystems {
			fmt.Fprintf(&b, "  %-12s %-12s %-10s %s", fa.Path, fa.Kind, human(fa.Size), fa.Archive)
			if opts := strings.Trim(fa.Options+","+fa.Flags, ","); opts != "" {
				fmt.Fprintf(&b, "  (%s)", opts)
			}
			b.WriteString("\n")
		}
	}
	// Names come from the guest (comm, args) or a crafted manifest: no control characters reach
	// the terminal (issue 13 item 15).
	lines := strings.Split(b.String(), "\n")
	for i := range lines {
		lines[i] = imgfmt.Printable(lines[i])
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

// human formats a byte count.
func human(n int64) string {
	switch {
	case n < 0:
		return "?"
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// stopSignalName names the signal of a stopped process (treefmt.Stop.Signal).
func stopSignalName(sig int) string {
	switch sig {
	case 19:
		return "SIGSTOP"
	case 20:
		return "SIGTSTP"
	case 21:
		return "SIGTTIN"
	case 22:
		return "SIGTTOU"
	}
	return fmt.Sprintf("signal %d", sig)
}
