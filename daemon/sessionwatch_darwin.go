package daemon

import (
	"context"
	"os"
	"os/exec"
	"time"
)

// sessionPoll is how often the daemon looks at the console session and
// the clocks on macOS.
const sessionPoll = 2 * time.Second

// watchSession follows the user's session on macOS without cgo: every
// sessionPoll it reads the console sessions from the IORegistry
// (/usr/sbin/ioreg, never one found on PATH), whose entry for this user
// says CGSSessionScreenIsLocked while the screen is locked; and it takes
// a wall clock that moved on more than the monotonic one (which stops
// while the machine sleeps) for a sleep. A sleep is so seen at the first
// look after the wake, before which no read was served; the cache was in
// memory while the machine slept. Not run on a Mac by opx's tests: the
// parsing and the sleep arithmetic are tested on any system.
func watchSession(_ func(string) string, event func(sessionEvent)) (status string, stop func()) {
	const ioreg = "/usr/sbin/ioreg"
	if _, err := os.Stat(ioreg); err != nil {
		return "nothing: " + ioreg + " is missing, so the screen's lock is not followed; lock with opx lock", func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		var sleeps sleepDetector
		wasLocked := false
		tick := time.NewTicker(sessionPoll)
		defer tick.Stop()
		for {
			if sleeps.slept(time.Now(), 2*sessionPoll) {
				event(sessionEvent{lock: true, sleep: true, cause: "the machine slept (its wall clock moved on without its monotonic one)"})
			}
			lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
			out, err := exec.CommandContext(lctx, ioreg, "-n", "Root", "-d1", "-a").Output()
			lcancel()
			if err == nil {
				if locked, found, err := consoleLocked(out, os.Getuid()); err == nil && found {
					switch {
					case locked && !wasLocked:
						event(sessionEvent{lock: true, cause: "the screen locked (CGSSessionScreenIsLocked)"})
					case !locked && wasLocked:
						// The system's own record, read by path: no program
						// of the user can fake it.
						event(sessionEvent{lock: false, trusted: true, cause: "the screen unlocked (CGSSessionScreenIsLocked)"})
					}
					wasLocked = locked
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return "the screen's lock (the console session in the IORegistry, every 2s) and sleep (seen at wake)", cancel
}
