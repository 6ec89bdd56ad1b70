// Command testsum reads `go test -json` from stdin and prints what a person wants from a long
// integration run: each failing test's name with what the test itself said (its t.Log/t.Error
// lines, "file.go:N: ...", which a failing integration test buries under thousands of sandbox
// log lines it dumps) and the last lines of its output, the packages that failed outside any test
// (a build error, a timeout panic), a progress line as each top-level test ends, and one closing
// line "N passed, N failed, N skipped". The whole stream is kept in the file named by -log, whose
// path the summary prints when something failed.
//
// It exits 1 if any test or package failed, or if the stream held no result at all (go test
// could not start), so `set -o pipefail; go test -json ... | testsum` fails as go test does.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is the part of test2json's TestEvent that testsum reads.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// tally accumulates a run's results.
type tally struct {
	passed, failed, skipped int
	// out holds each test's (package + "\x00" + test) output lines, dropped once it passes;
	// said holds the lines the test logged itself (saidLine), at most maxSaid of them.
	out, said map[string][]string
	// failures lists failed tests in the order they failed, with their output tails.
	failures []failure
	// pkgFailed lists packages that failed; pkgOut holds output that belongs to no test.
	pkgFailed []string
	pkgOut    map[string][]string
	results   int
}

type failure struct {
	name       string
	said, tail []string
}

// maxSaid bounds how many of a failing test's own lines are printed (the first ones: the first
// error is usually the cause).
const maxSaid = 40

// saidLine matches a line that testing's t.Log, t.Error or t.Fatal wrote: indented, "file.go:N: ".
// The harness's dumps of log files begin with such a line too ("run.go:354: ===== path ====="):
// logLine tells them apart.
var (
	saidLine = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: `)
	logLine  = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: ===== `)
)

func newTally() *tally {
	return &tally{out: map[string][]string{}, said: map[string][]string{}, pkgOut: map[string][]string{}}
}

// add records one event. Subtests count as results of their own; a parent that fails because a
// subtest failed is counted too, as go test itself reports both.
func (t *tally) add(e event, tailLines int) {
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "output", "build-output":
		if e.Test == "" {
			t.pkgOut[e.Package] = appendTail(t.pkgOut[e.Package], e.Output, 4*tailLines)
		} else {
			t.out[key] = appendTail(t.out[key], e.Output, tailLines)
			if saidLine.MatchString(e.Output) && !logLine.MatchString(e.Output) && len(t.said[key]) < maxSaid {
				t.said[key] = append(t.said[key], e.Output)
			}
		}
	case "pass", "skip":
		t.results++
		if e.Test == "" {
			break
		}
		if e.Action == "pass" {
			t.passed++
		} else {
			t.skipped++
		}
		delete(t.out, key)
		delete(t.said, key)
	case "fail", "build-fail":
		t.results++
		if e.Test == "" {
			t.pkgFailed = append(t.pkgFailed, e.Package)
			break
		}
		t.failed++
		t.failures = append(t.failures, failure{name: e.Test, said: t.said[key], tail: t.out[key]})
		delete(t.out, key)
		delete(t.said, key)
	}
}

// appendTail appends line to lines, keeping at most n lines.
func appendTail(lines []string, line string, n int) []string {
	lines = append(lines, line)
	if len(lines) > n {
		lines = append(lines[:0], lines[len(lines)-n:]...)
	}
	return lines
}

// report writes the failures and the summary line to w.
func (t *tally) report(w io.Writer, logPath string) {
	for _, f := range t.failures {
		if len(f.said) > 0 {
			fmt.Fprintf(w, "=== FAIL %s: what it said\n", f.name)
			writeLines(w, f.said)
		}
		fmt.Fprintf(w, "=== FAIL %s (last %d lines of its output)\n", f.name, len(f.tail))
		writeLines(w, f.tail)
	}
	sort.Strings(t.pkgFailed)
	for _, p := range t.pkgFailed {
		fmt.Fprintf(w, "=== package %s failed; its own output:\n", p)
		for _, l := range t.pkgOut[p] {
			fmt.Fprint(w, l)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", t.passed, t.failed, t.skipped)
	if t.bad() && logPath != "" {
		fmt.Fprintf(w, "full output: %s\n", logPath)
	}
}

// writeLines writes lines to w, each ending in a newline.
func writeLines(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprint(w, l)
		if !strings.HasSuffix(l, "\n") {
			fmt.Fprintln(w)
		}
	}
}

func (t *tally) bad() bool { return t.failed > 0 || len(t.pkgFailed) > 0 || t.results == 0 }

func main() {
	logPath := flag.String("log", "", "also write the whole go test -json stream to this file")
	tailLines := flag.Int("tail", 60, "lines of a failing test's own output to print")
	flag.Parse()
	if flag.NArg() != 0 || *tailLines < 1 {
		fmt.Fprintln(os.Stderr, "usage: go test -json ... | testsum [-log FILE] [-tail N]")
		os.Exit(2)
	}
	var log io.Writer = io.Discard
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testsum: %v\n", err)
			os.Exit(2)
		}
		defer f.Close()
		log = f
	}
	t := newTally()
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		fmt.Fprintf(log, "%s\n", line)
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Not test2json: go's own messages (e.g. "no Go files"); show them.
			fmt.Println(string(line))
			continue
		}
		// Progress: one line per top-level test and per package as each ends.
		// (A package without tests "skips": no line for it.)
		if (e.Action == "pass" || e.Action == "fail" || e.Action == "skip" && e.Test != "") && !strings.Contains(e.Test, "/") {
			name := e.Test
			if name == "" {
				name = e.Package
			}
			fmt.Printf("%-4s %s (%.1fs)\n", strings.ToUpper(e.Action), name, e.Elapsed)
		}
		t.add(e, *tailLines)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "testsum: reading: %v\n", err)
		os.Exit(2)
	}
	t.report(os.Stdout, *logPath)
	if t.bad() {
		os.Exit(1)
	}
}
