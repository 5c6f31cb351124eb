package cli

import (
	"golang.org/x/sys/unix"

	"github.com/opxhq/opx/api"
)

// clockCheck asks the kernel whether the clock is kept synchronized (by NTP
// or the like). An unsynchronized clock is a warning: it may still be right.
func clockCheck() (api.Check, bool) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return api.Check{}, false
	}
	c := api.Check{Name: "clock", OK: true, Detail: "synchronized"}
	if state == unix.TIME_ERROR {
		c.Warn = true
		c.Detail = "not known to be synchronized (no NTP); one-time passwords and token lifetimes need a right clock"
	}
	return c, true
}

// freeBytes is the room left for this user on dir's file system.
func freeBytes(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Frsize), true
}
