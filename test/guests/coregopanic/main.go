// Command coregopanic is a static Go guest that panics in main.explode; run with
// GOTRACEBACK=crash, the Go runtime then dies of SIGABRT, which dumps core.
package main

import "fmt"

//go:noinline
func explode(n int) {
	panic(fmt.Sprintf("coregopanic: boom %d", n))
}

func main() {
	explode(42)
}
