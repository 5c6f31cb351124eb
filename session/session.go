// Package session owns the daemon's session state: unlocked or locked, the
// idle timer that locks it, and the epoch that tells a fetch started before a
// lock that its result must not be kept.
package session

import (
	"sync"
	"time"

	"github.com/opxhq/opx/api"
)

// Reasons passed to the lock callback.
const (
	ReasonIdle        = "idle_timeout"
	ReasonManual      = "manual"
	ReasonAuthFailure = "auth_failure"
	// ReasonScreenLock and ReasonSleep: the user's screen locked, or the
	// machine is going to sleep (--lock-on-screen-lock).
	ReasonScreenLock = "screen_locked"
	ReasonSleep      = "sleep"
)

// Session tracks whether secrets may be served. The zero value is not usable;
// use New. All methods are safe for concurrent use.
type Session struct {
	idleEnabled bool
	timeout     time.Duration
	onLock      func(reason string)

	mu      sync.Mutex
	locked  bool
	started bool // a successful read happened since the last unlock
	last    time.Time
	timer   *time.Timer
	epoch   uint64
	reason  string // why the session was last locked
	closed  bool
	nowFunc func() time.Time
}

// New returns an unlocked session. When enabled is true and timeout > 0 the
// session locks itself after timeout without a successful read, counted from
// the first one. onLock runs (outside any session lock) each time the session
// goes from unlocked to locked, with the reason.
func New(enabled bool, timeout time.Duration, onLock func(reason string)) *Session {
	if onLock == nil {
		onLock = func(string) {}
	}
	return &Session{
		idleEnabled: enabled && timeout > 0,
		timeout:     timeout,
		onLock:      onLock,
		nowFunc:     time.Now,
	}
}

// Locked reports whether the session is locked.
func (s *Session) Locked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locked
}

// State reports whether the session is locked and its epoch (a number that
// changes every time the session locks; a value fetched under one epoch must
// not be cached under another), read together:
// a request that found the session unlocked holds the epoch of that unlocked
// period, so anything it fetches is dropped if a lock comes in between.
// (Reading Locked and then Epoch could pair "unlocked" with the epoch of a
// lock that happened in between, and cache a value fetched after the lock.)
func (s *Session) State() (locked bool, epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locked, s.epoch
}

// Touch records a successful read: it starts the idle countdown on the first
// one and restarts it on every later one. It is cheap; the timer is only
// re-armed when it fires.
func (s *Session) Touch() {
	if !s.idleEnabled {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked || s.closed {
		return
	}
	s.last = s.nowFunc()
	if !s.started {
		s.started = true
		s.timer = time.AfterFunc(s.timeout, s.expire)
	}
}

// expire runs when the idle timer fires: it locks the session if it has
// been idle long enough, or re-arms the timer for the time that is left.
func (s *Session) expire() {
	s.mu.Lock()
	if s.locked || s.closed || !s.started {
		s.mu.Unlock()
		return
	}
	left := s.timeout - s.nowFunc().Sub(s.last)
	if left > 0 {
		s.timer = time.AfterFunc(left, s.expire)
		s.mu.Unlock()
		return
	}
	s.lockLocked()
	s.reason = ReasonIdle
	s.mu.Unlock()
	s.onLock(ReasonIdle)
}

// Lock locks the session now and reports whether it was unlocked before.
// The lock callback runs only on that transition.
func (s *Session) Lock(reason string) bool {
	s.mu.Lock()
	if s.locked {
		s.mu.Unlock()
		return false
	}
	s.lockLocked()
	s.reason = reason
	s.mu.Unlock()
	s.onLock(reason)
	return true
}

// UnlockIf unlocks the session if it is locked for one of reasons (the
// screen's unlock undoes the screen's lock, never opx lock's), and reports
// whether it did.
func (s *Session) UnlockIf(reasons ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range reasons {
		if s.locked && s.reason == r {
			s.locked = false
			return true
		}
	}
	return false
}

func (s *Session) lockLocked() {
	s.locked = true
	s.started = false
	s.epoch++
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// Unlock unlocks the session and reports whether it was locked before. The
// idle countdown starts again with the next successful read.
func (s *Session) Unlock() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.locked
	s.locked = false
	return was
}

// Close stops the idle timer for good.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// Status returns the session part of the daemon's status.
func (s *Session) Status() api.SessionStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := api.SessionStatus{
		Enabled:              s.idleEnabled,
		State:                api.StateUnlocked,
		IdleTimeoutSeconds:   int64(s.timeout / time.Second),
		TimeUntilLockSeconds: -1,
	}
	if !s.idleEnabled {
		st.IdleTimeoutSeconds = 0
	}
	switch {
	case s.locked:
		st.State, st.LockReason = api.StateLocked, s.reason
	case s.idleEnabled && s.started:
		left := s.timeout - s.nowFunc().Sub(s.last)
		st.TimeUntilLockSeconds = max(int64((left+time.Second-1)/time.Second), 0)
	case s.idleEnabled:
		st.TimeUntilLockSeconds = int64(s.timeout / time.Second)
	}
	return st
}
