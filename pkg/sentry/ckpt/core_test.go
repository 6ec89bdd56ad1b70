package ckpt

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/eventchannel"
	"gvisor.dev/gvisor/pkg/goid"
	ucspb "gvisor.dev/gvisor/pkg/sentry/kernel/uncaught_signal_go_proto"
)

func TestCorePattern(t *testing.T) {
	v := CoreVars{Name: "a/b", PID: 7, UID: 1000, GID: 100, Signal: 11, Time: 1700000000, Hostname: "h/x"}
	for pat, want := range map[string]string{
		"core":                        "core",
		"core.%e.%p":                  "core.a!b.7",
		"/cores/%u-%g-%s-%t-%h-%%-%e": "/cores/1000-100-11-1700000000-h!x-%-a!b",
	} {
		if err := ValidateCorePattern(pat); err != nil {
			t.Errorf("ValidateCorePattern(%q) = %v", pat, err)
		}
		if got := ExpandCorePattern(pat, v); got != want {
			t.Errorf("ExpandCorePattern(%q) = %q, want %q", pat, got, want)
		}
	}
	if err := ValidateCorePattern(""); err != nil {
		t.Errorf("the empty pattern (no cores) is refused: %v", err)
	}
	for _, bad := range []string{"core.%x", "core%", "|/bin/handler %p", "a\x00b"} {
		if err := ValidateCorePattern(bad); err == nil {
			t.Errorf("ValidateCorePattern(%q) accepted it", bad)
		}
	}
	p, err := DefaultPolicy().WithAnnotations(map[string]string{AnnotationCorePattern: ""})
	if err != nil || p.CorePattern != "" {
		t.Errorf("annotation %s=\"\": policy %+v, %v; want cores disabled", AnnotationCorePattern, p, err)
	}
	if DefaultPolicy().CorePattern != "core" {
		t.Errorf("default core pattern %q, want core", DefaultPolicy().CorePattern)
	}
}

// probeEmitter records the goroutine each UncaughtSignal event arrives on.
type probeEmitter struct{ got []int64 }

func (e *probeEmitter) Emit(msg proto.Message) (bool, error) {
	if _, ok := msg.(*ucspb.UncaughtSignal); ok {
		e.got = append(e.got, goid.Get())
	}
	return false, nil
}

func (e *probeEmitter) Close() error { return nil }

// TestCoreHookRoute checks the part of the core-dump route that a unit test can reach (the rest is
// TestCoreSegv in test/): an emitter added with eventchannel.AddEmitter receives an UncaughtSignal
// synchronously, on the goroutine that emits it — Task.deliverSignal's goroutine is the dying
// task's, which is what lets dumpCore work on it. And the event's fields the hook reads exist.
func TestCoreHookRoute(t *testing.T) {
	e := &probeEmitter{}
	eventchannel.AddEmitter(e)
	defer eventchannel.DefaultEmitter.Close()
	ev := &ucspb.UncaughtSignal{Tid: 1, Pid: 1, SignalNumber: 11, FaultAddr: 0x10}
	if err := eventchannel.Emit(ev); err != nil {
		t.Fatal(err)
	}
	if len(e.got) != 1 || e.got[0] != goid.Get() {
		t.Fatalf("emitter saw the event on goroutines %v, want once on %d (synchronously)", e.got, goid.Get())
	}
	// Without a kernel (no syscall seen yet) the hook does nothing, and a signal whose default
	// action is not "core" is ignored.
	handleUncaughtSignal(ev)
	handleUncaughtSignal(&ucspb.UncaughtSignal{Tid: 1, SignalNumber: 15})
	if coreSignals&linux.SignalSetOf(linux.SIGTERM) != 0 || coreSignals&linux.MakeSignalSet(linux.SIGSEGV, linux.SIGABRT) != linux.MakeSignalSet(linux.SIGSEGV, linux.SIGABRT) {
		t.Errorf("coreSignals = %v", coreSignals)
	}
}
