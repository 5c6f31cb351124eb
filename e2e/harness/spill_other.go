//go:build !linux

package harness

import "errors"

// SpillRegisters works on Linux only (spill_linux.go).
func SpillRegisters(pid int) error {
	return errors.New("spilling a process's registers needs Linux")
}
