package daemon

import (
	"net/http"
	"sync"
	"time"
)

// idleExit is --exit-when-idle: it tells when the daemon has had no
// connection open and no backend call running for after, so that a CI
// job's daemon goes away when the job's steps stop asking.
//
// Busy is a connection, not a request: a client holds its connection only
// while it asks (opx run lets go before it runs its command), and a daemon
// that let a connection's next request find the socket gone would fail a
// client that was never idle. A backend call counts on its own, since it
// may outlive the connection that asked for it (the caller hung up, a
// refresh ahead of expiry).
type idleExit struct {
	after   time.Duration
	running func() int64 // the backend fetches in flight

	mu   sync.Mutex
	open int       // connections open
	last time.Time // when the daemon was last seen busy
}

// newIdleExit returns the watch for --exit-when-idle after, or nil (which
// never fires) when after is 0.
func newIdleExit(after time.Duration, running func() int64) *idleExit {
	if after <= 0 {
		return nil
	}
	return &idleExit{after: after, running: running, last: time.Now()}
}

// connState is the http.Server's ConnState hook: a connection opening,
// a request arriving on it and its closing each count as activity.
func (w *idleExit) connState(state http.ConnState) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch state {
	case http.StateNew:
		w.open++
	case http.StateClosed, http.StateHijacked:
		w.open--
	}
	w.last = time.Now()
}

// idleFor is how long the daemon has been idle at now: 0 while a
// connection is open or a backend call runs.
func (w *idleExit) idleFor(now time.Time) time.Duration {
	busy := w.running() > 0
	w.mu.Lock()
	defer w.mu.Unlock()
	if busy || w.open > 0 {
		w.last = now
	}
	return now.Sub(w.last)
}

// watch returns a channel closed once the daemon has been idle for
// w.after, or nil (never ready) when w is nil; the watch ends with stop.
// It looks every eighth of w.after (at most every second), so the daemon
// exits within that much past w.after; connections are counted as they
// come and go, so none is missed between looks.
func (w *idleExit) watch(stop <-chan struct{}) <-chan struct{} {
	if w == nil {
		return nil
	}
	idle := make(chan struct{})
	every := min(max(w.after/8, 10*time.Millisecond), time.Second)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				if w.idleFor(now) >= w.after {
					close(idle)
					return
				}
			}
		}
	}()
	return idle
}
