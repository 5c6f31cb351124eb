//go:build unix

package cli

import "syscall"

// Exec runs the program at path in place of opx, with the argument list
// argv (its name first) and the environment env. On Unix the program
// replaces opx's process (execve), so Exec returns only the error that
// kept it from starting.
func Exec(path string, argv, env []string) (code int, err error) {
	return 0, syscall.Exec(path, argv, env)
}

// signalStop asks the daemon, the process pid, to stop: SIGTERM, which it
// takes as opx stop.
func signalStop(_ *Env, pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }
