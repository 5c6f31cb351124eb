//go:build !linux && !windows

package daemon

import "runtime"

// watchSession follows nothing here yet: on macOS the screen's
// lock and sleep are not followed (issue 27), which status and doctor say.
func watchSession(func(string) string, func(sessionEvent)) (status string, stop func()) {
	return "nothing: opx does not follow the screen lock or sleep on " + runtime.GOOS + " yet; lock it with opx lock", func() {}
}
