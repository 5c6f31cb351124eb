//go:build unix

package harness

import "syscall"

// terminate asks process pid to stop (SIGTERM), as a service manager does.
func terminate(pid int) { syscall.Kill(pid, syscall.SIGTERM) }

// kill ends process pid at once (SIGKILL).
func kill(pid int) { syscall.Kill(pid, syscall.SIGKILL) }
