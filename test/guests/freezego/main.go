// Command freezego is a static Go guest for the freeze tests: with goroutines busy on several
// OS threads, it freezes itself into the image named by its first argument and prints
// "freeze=<ret> errno=<errno>" and then "alive <sum>" (the goroutines keep running).
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// sysCheckpoint and ckptFreeze are runsc-ckpt's guest ABI (include/ckpt.h).
const (
	sysCheckpoint = 1000
	ckptFreeze    = 1
)

// marker is a global the test can find in the image.
var marker = []byte("freezego-marker-0123456789")

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: freezego IMAGE")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(4)
	var counters [4]atomic.Uint64
	for i := range counters {
		go func() {
			for {
				counters[i].Add(1)
				if counters[i].Load()%1024 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)

	f, err := os.OpenFile(os.Args[1], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	minus1 := ^uintptr(0)
	r, _, errno := syscall.Syscall6(sysCheckpoint, ckptFreeze, f.Fd(), minus1, 0, 0, 0)
	fmt.Printf("freeze=%d errno=%d\n", int64(r), int(errno))
	before := counters[0].Load() + counters[1].Load() + counters[2].Load() + counters[3].Load()
	time.Sleep(20 * time.Millisecond)
	after := counters[0].Load() + counters[1].Load() + counters[2].Load() + counters[3].Load()
	fmt.Printf("alive %v %s\n", after > before, marker[:8])
	if errno != 0 || after <= before {
		os.Exit(1)
	}
}
