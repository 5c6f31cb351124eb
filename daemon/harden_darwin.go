package daemon

import "golang.org/x/sys/unix"

// harden keeps secrets out of core dumps and denies debugger attachment
// (PT_DENY_ATTACH).
func harden() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return err
	}
	return unix.PtraceDenyAttach()
}
