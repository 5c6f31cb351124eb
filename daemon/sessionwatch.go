package daemon

import (
	"github.com/opxhq/opx/audit"
	"github.com/opxhq/opx/session"
)

// sessionEvent is a change of the user's session the daemon follows: the
// screen locked or unlocked, or the machine going to sleep. trusted marks
// an unlock from a source no other program of the user can fake (logind
// on the system bus), the only one --unlock-with-session acts on.
type sessionEvent struct {
	lock, sleep, trusted bool
	cause                string
}

// followSession locks the daemon's session when the user's locks or the
// machine sleeps (--lock-on-screen-lock), and, with --unlock-with-session,
// opens it again when the screen unlocks, if the screen's lock (or sleep)
// is what locked it. It returns what it follows, for status, and stop.
func (s *server) followSession() (follows string, stop func()) {
	if !s.cfg.LockOnScreenLock {
		return "off (--lock-on-screen-lock=false)", func() {}
	}
	return watchSession(processEnv, func(ev sessionEvent) {
		switch {
		case ev.lock:
			reason := session.ReasonScreenLock
			if ev.sleep {
				reason = session.ReasonSleep
			}
			s.lockCause.Store(&ev.cause)
			if s.session.Lock(reason) {
				s.log.Info().Str("cause", ev.cause).Msg("the user's session locked: opx locked")
			}
		case ev.trusted && s.cfg.UnlockWithSession:
			if s.session.UnlockIf(session.ReasonScreenLock, session.ReasonSleep) {
				s.log.Info().Str("cause", ev.cause).Msg("the user's session unlocked: opx unlocked (--unlock-with-session)")
				s.audit.Session(audit.SessionUnlock, ev.cause+" (--unlock-with-session)")
			}
		}
	})
}
