//go:build unix

package backend

import (
	"os/exec"
	"syscall"
)

// runTree runs cmd in a process group of its own, which cmd's context, when
// done, kills whole (SIGKILL to the group).
func runTree(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd.Run()
}

// killedBy reports whether a signal ended the process, and which.
func killedBy(ee *exec.ExitError) (syscall.Signal, bool) {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return ws.Signal(), true
}
