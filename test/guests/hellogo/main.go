// Command hellogo is a static Go guest: it prints its arguments and exits with the status given as
// the first one.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	fmt.Printf("hello from Go in the sandbox: %s\n", strings.Join(os.Args[1:], " "))
	code := 0
	if len(os.Args) > 1 {
		c, err := strconv.Atoi(os.Args[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "hellogo: %v\n", err)
			os.Exit(2)
		}
		code = c
	}
	os.Exit(code)
}
