//go:build !windows

package main

import (
	"fmt"
	"os"
)

// wtsLock is for Windows only.
func wtsLock(string) {
	fmt.Fprintln(os.Stderr, "peerhelper wtslock: Windows only")
	os.Exit(2)
}
