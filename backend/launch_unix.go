//go:build unix

package backend

import (
	"fmt"
	"os"
	"syscall"
)

// execOP becomes op: same process, same process group (which the daemon
// kills whole when op runs too long), the rest of standard input.
func execOP(path string, argv, env []string) int {
	err := syscall.Exec(path, argv, env)
	fmt.Fprintf(os.Stderr, "opx: run %s: %v\n", path, err)
	return 127
}

// selfExecutable is the program the daemon starts as the launcher: its own
// image, even after an upgrade replaced the file (on Linux).
func selfExecutable() (string, error) {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe", nil
	}
	return os.Executable()
}
