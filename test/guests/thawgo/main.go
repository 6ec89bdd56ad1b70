// Command thawgo is a Go guest for thaw: goroutines, channels, timers and the garbage collector
// must keep working in a thawed Go program (its runtime has several threads, a netpoller on epoll,
// and timers).
//
// Usage: thawgo IMAGE
//
// It starts workers that sum numbers sent over a channel, a ticker goroutine and a goroutine spinning
// without calls (only preemption signals, sent by tid, can stop it for a GC), builds a map, then
// freezes itself into IMAGE (sys_checkpoint, number 1000). It prints "r=<result>". After the freeze
// itself (r == 0) it kills itself with SIGKILL. After a thaw (r == 1) it checks the map, that the
// ticker still ticks, that a timer fires, that the workers answer and that a GC cycle completes, prints
// "map=<ok> ticks=<ok> timer=<ok> workers=<ok> gc=<ok>" and exits 0 if all are ok.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// spin is written by the spinning goroutine (so its loop is not optimised away).
var spin int

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: thawgo IMAGE")
		os.Exit(2)
	}
	var ticks atomic.Int64
	go func() {
		for range time.Tick(2 * time.Millisecond) {
			ticks.Add(1)
		}
	}()
	jobs, results := make(chan int), make(chan int)
	for w := 0; w < 4; w++ {
		go func() {
			for n := range jobs {
				s := 0
				for i := 1; i <= n; i++ {
					s += i
				}
				results <- s
			}
		}()
	}
	// A goroutine spinning without calls: only an asynchronous preemption signal, sent to its
	// thread by tid, can stop it, and every stop-the-world (GC) has to.
	go func() {
		for i := 0; ; i++ {
			spin = i
		}
	}()
	m := make(map[int]string)
	for i := 0; i < 100000; i++ {
		m[i] = fmt.Sprint(i * i)
	}
	for ticks.Load() < 3 {
		time.Sleep(time.Millisecond)
	}

	f, err := os.OpenFile(os.Args[1], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r, _, errno := syscall.Syscall6(1000, 1, f.Fd(), uintptr(^uint32(0)), 0, 0, 0)
	fmt.Printf("r=%d errno=%d\n", int64(r), errno)
	f.Close()
	if errno == 0 && r == 0 {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}

	mapOK := len(m) == 100000 && m[777] == "603729"
	t0 := ticks.Load()
	timerOK := false
	select {
	case <-time.After(20 * time.Millisecond):
		timerOK = true
	case <-time.After(5 * time.Second):
	}
	// The ticker's next tick was scheduled on the freezing sandbox's CLOCK_MONOTONIC, which a new
	// sandbox restarts near zero: it resumes once the new clock passes that point (docs/notes-thaw.md).
	deadline := time.Now().Add(5 * time.Second)
	for ticks.Load() <= t0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	ticksOK := ticks.Load() > t0
	workersOK := true
	go func() {
		for n := 1; n <= 40; n++ {
			jobs <- n
		}
	}()
	total := 0
	for n := 1; n <= 40; n++ {
		total += <-results
	}
	workersOK = total == 11480
	gcDone := make(chan bool)
	go func() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		gcDone <- ms.NumGC > 0
	}()
	gcOK := false
	select {
	case gcOK = <-gcDone:
	case <-time.After(5 * time.Second):
		fmt.Println("GC did not finish: the spinning goroutine was not preempted")
	}
	fmt.Printf("map=%t ticks=%t timer=%t workers=%t gc=%t\n", mapOK, ticksOK, timerOK, workersOK, gcOK)
	if r == 1 && mapOK && ticksOK && timerOK && workersOK && gcOK {
		os.Exit(0)
	}
	os.Exit(1)
}
