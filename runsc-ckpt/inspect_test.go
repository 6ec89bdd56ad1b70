package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/subcommands"
)

// runInspect runs `inspect args...` and returns its exit status and stdout.
func runInspect(t *testing.T, args ...string) (subcommands.ExitStatus, string) {
	t.Helper()
	cmd := new(Inspect)
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	cmd.SetFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	status := cmd.Execute(context.Background(), fs)
	os.Stdout = stdout
	w.Close()
	return status, <-out
}

const goldenImage = "../pkg/imgfmt/testdata/golden-basic.img"

func TestInspectText(t *testing.T) {
	status, out := runInspect(t, goldenImage)
	if status != subcommands.ExitSuccess {
		t.Fatalf("inspect exited %v", status)
	}
	for _, want := range []string{"process:  prog (pid 7", "threads (2):", "0x0000000000401000", "[stack]", "SIGUSR1 (10)", "totals: 2 threads, 4 mappings, 4 fds"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
}

func TestInspectJSON(t *testing.T) {
	status, out := runInspect(t, "--json", goldenImage)
	if status != subcommands.ExitSuccess {
		t.Fatalf("inspect --json exited %v", status)
	}
	var s struct {
		Process struct{ Name string }
		Threads []struct{ TID int32 }
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("inspect --json output is not JSON: %v\n%s", err, out)
	}
	if s.Process.Name != "prog" || len(s.Threads) != 2 || s.Threads[1].TID != 8 {
		t.Errorf("inspect --json: %+v", s)
	}
}

func TestInspectBadImage(t *testing.T) {
	img, err := os.ReadFile(goldenImage)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.img")
	img[0x170] ^= 0xff // inside NT_PRPSINFO
	if err := os.WriteFile(bad, img, 0o600); err != nil {
		t.Fatal(err)
	}
	if status, out := runInspect(t, bad); status == subcommands.ExitSuccess || out != "" {
		t.Errorf("inspect of a corrupt image: status %v, stdout %q", status, out)
	}
	if status, _ := runInspect(t, filepath.Join(t.TempDir(), "missing")); status == subcommands.ExitSuccess {
		t.Error("inspect of a missing file succeeded")
	}
	if status, _ := runInspect(t); status != subcommands.ExitUsageError {
		t.Errorf("inspect without an image: status %v, want a usage error", status)
	}
}
