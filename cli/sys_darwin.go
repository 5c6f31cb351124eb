package cli

import (
	"golang.org/x/sys/unix"

	"github.com/opxhq/opx/api"
)

// clockCheck has no kernel answer on macOS; the Vault and OpenBao checks
// compare the clock with their servers'.
func clockCheck() (api.Check, bool) { return api.Check{}, false }

// freeBytes is the room left for this user on dir's file system.
func freeBytes(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
