// Command treego is a Go guest for whole-container checkpoints: a multi-threaded Go program as a
// container's init, whose runtime keeps each thread's id (m.procid) to send preemption signals.
//
// Usage: treego LOG
//
// It starts goroutines on several threads (one spinning without calls, which only a preemption
// signal sent by thread id can stop for a GC), prints "ready", and on every SIGUSR1 runs a GC cycle
// and appends "gc <n> threads <count>" to LOG. A GC that cannot preempt the spinner (stale thread
// ids) never completes, so the line never comes.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// spin is written by the spinning goroutine (so its loop is not optimised away).
var spin int

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: treego LOG")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(4)
	go func() {
		for {
			spin++
		}
	}()
	for i := 0; i < 3; i++ {
		go func() {
			for range time.Tick(time.Millisecond) {
			}
		}()
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	time.Sleep(50 * time.Millisecond) // Let the runtime start its threads.
	fmt.Println("ready")
	for n := 1; ; n++ {
		<-usr1
		runtime.GC()
		ents, _ := os.ReadDir("/proc/self/task")
		f, err := os.OpenFile(os.Args[1], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintf(f, "gc %d threads %d\n", n, len(ents))
		f.Close()
	}
}
