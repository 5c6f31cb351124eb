//go:build !windows

package main

import (
	"fmt"
	"os"
)

// roots is for Windows only: elsewhere opx checks no certificate store.
func roots(op, file string) {
	fmt.Fprintf(os.Stderr, "peerhelper %s: Windows only\n", op)
	os.Exit(2)
}
