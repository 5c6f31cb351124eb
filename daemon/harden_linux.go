package daemon

import "golang.org/x/sys/unix"

// harden keeps secrets out of core dumps and away from debuggers of the
// same user: no core files, and the process is not dumpable (which also
// closes /proc/PID/mem and ptrace to non-root processes).
func harden() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
