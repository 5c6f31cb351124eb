package cli

import (
	"golang.org/x/sys/windows"

	"github.com/opxhq/opx/api"
)

// clockCheck reports false: opx doctor does not ask Windows whether its
// clock is synchronized.
func clockCheck() (api.Check, bool) { return api.Check{}, false }

// freeBytes is the room left for this user on dir's volume.
func freeBytes(dir string) (uint64, bool) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, false
	}
	var avail uint64
	if windows.GetDiskFreeSpaceEx(p, &avail, nil, nil) != nil {
		return 0, false
	}
	return avail, true
}
