//go:build unix

package console

import "os/exec"

// Detach does nothing: a Unix daemon has no console window to leave.
func Detach(string) (bool, error) { return false, nil }

// HideChild does nothing: no console window opens for a Unix child.
func HideChild(*exec.Cmd) {}
