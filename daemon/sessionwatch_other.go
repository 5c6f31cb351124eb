//go:build !linux && !windows && !darwin

package daemon

import "runtime"

// watchSession follows nothing on the systems opx has no way to watch
// (the BSDs), which status and doctor say.
func watchSession(func(string) string, func(sessionEvent)) (status string, stop func()) {
	return "nothing: opx does not follow the screen lock or sleep on " + runtime.GOOS + "; lock it with opx lock", func() {}
}
