package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func feed(t *testing.T, events []event, tail int) (*tally, string) {
	t.Helper()
	s := newTally()
	for _, e := range events {
		// Round-trip through JSON as test2json's stream would.
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		s.add(back, tail)
	}
	var out bytes.Buffer
	s.report(&out, "/x/log.json")
	return s, out.String()
}

func TestCountsAndTails(t *testing.T) {
	const p = "example/test"
	var ev []event
	ev = append(ev, event{Action: "run", Package: p, Test: "TestA"},
		event{Action: "output", Package: p, Test: "TestA", Output: "a says hi\n"},
		event{Action: "pass", Package: p, Test: "TestA"},
		event{Action: "skip", Package: p, Test: "TestS"})
	for i := 0; i < 10; i++ {
		ev = append(ev, event{Action: "output", Package: p, Test: "TestB/sub", Output: fmt.Sprintf("line %d\n", i)})
	}
	ev = append(ev, event{Action: "fail", Package: p, Test: "TestB/sub"},
		event{Action: "fail", Package: p, Test: "TestB"},
		event{Action: "output", Package: p, Output: "FAIL\n"},
		event{Action: "fail", Package: p})
	s, out := feed(t, ev, 3)
	if s.passed != 1 || s.failed != 2 || s.skipped != 1 {
		t.Errorf("counts = %d/%d/%d, want 1 passed, 2 failed, 1 skipped", s.passed, s.failed, s.skipped)
	}
	if !strings.Contains(out, "1 passed, 2 failed, 1 skipped\n") {
		t.Errorf("no summary line in:\n%s", out)
	}
	if !strings.Contains(out, "line 9\n") || !strings.Contains(out, "line 7\n") || strings.Contains(out, "line 6\n") {
		t.Errorf("want exactly the last 3 lines of TestB/sub:\n%s", out)
	}
	if strings.Contains(out, "a says hi") {
		t.Errorf("a passing test's output was printed:\n%s", out)
	}
	if !strings.Contains(out, "package example/test failed") || !strings.Contains(out, "full output: /x/log.json") {
		t.Errorf("package failure or log path missing:\n%s", out)
	}
	if !s.bad() {
		t.Error("a run with failures is not bad")
	}
}

func TestEmptyStreamIsBad(t *testing.T) {
	s, out := feed(t, nil, 3)
	if !s.bad() {
		t.Error("a stream with no results counts as good")
	}
	if !strings.Contains(out, "0 passed, 0 failed, 0 skipped") {
		t.Errorf("summary: %s", out)
	}
}

func TestGreenRun(t *testing.T) {
	const p = "example/test"
	s, out := feed(t, []event{
		{Action: "pass", Package: p, Test: "TestA"},
		{Action: "pass", Package: p},
	}, 3)
	if s.bad() || strings.Contains(out, "full output") {
		t.Errorf("green run reported bad:\n%s", out)
	}
}

// TestSaidLines: a failing test's own t.Error lines are printed even when thousands of log lines
// it dumped afterwards push them out of the tail; the harness's dump headers are not among them.
func TestSaidLines(t *testing.T) {
	const p = "example/test"
	ev := []event{
		{Action: "output", Package: p, Test: "TestC", Output: "    tree_oci_test.go:250: pid 2: restored as \"R\", want \"S\"\n"},
		{Action: "output", Package: p, Test: "TestC", Output: "    run.go:354: ===== /x/.logs/boot.txt =====\n"},
	}
	for i := 0; i < 100; i++ {
		ev = append(ev, event{Action: "output", Package: p, Test: "TestC", Output: fmt.Sprintf("        D1203 log line %d\n", i)})
	}
	ev = append(ev, event{Action: "fail", Package: p, Test: "TestC"})
	_, out := feed(t, ev, 3)
	if !strings.Contains(out, "=== FAIL TestC: what it said\n    tree_oci_test.go:250: pid 2") {
		t.Errorf("the test's own error line is missing:\n%s", out)
	}
	if strings.Contains(out, "===== /x/.logs/boot.txt") {
		t.Errorf("a log dump header was printed as something the test said:\n%s", out)
	}
	if !strings.Contains(out, "log line 99") || strings.Contains(out, "log line 96") {
		t.Errorf("want the last 3 log lines as the tail:\n%s", out)
	}
}
