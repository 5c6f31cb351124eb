package daemon

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// The idle clock runs only while no connection is open and no backend
// call runs; each of them, and a connection's coming and going, starts it
// again. (The e2e tests TestExitWhenIdle* run the real daemon.)
func TestIdleExitCountsConnectionsAndBackendCalls(t *testing.T) {
	var running atomic.Int64
	w := newIdleExit(time.Minute, running.Load)
	t0 := w.last
	if got := w.idleFor(t0.Add(time.Minute)); got != time.Minute {
		t.Fatalf("idleFor with nothing open = %v, want 1m0s", got)
	}

	w.connState(http.StateNew)
	if got := w.idleFor(time.Now().Add(time.Hour)); got != 0 {
		t.Errorf("idleFor with a connection open = %v, want 0", got)
	}
	w.connState(http.StateActive)
	w.connState(http.StateIdle)
	w.connState(http.StateClosed)
	closed := w.last
	if got := w.idleFor(closed.Add(30 * time.Second)); got != 30*time.Second {
		t.Errorf("idleFor 30 s after the last connection closed = %v, want 30s", got)
	}

	running.Store(1) // a fetch whose caller hung up, or a refresh ahead
	later := closed.Add(2 * time.Minute)
	if got := w.idleFor(later); got != 0 {
		t.Errorf("idleFor with a backend call running = %v, want 0", got)
	}
	running.Store(0)
	if got := w.idleFor(later.Add(time.Second)); got != time.Second {
		t.Errorf("idleFor 1 s after the backend call was seen = %v, want 1s", got)
	}
}

func TestIdleExitOff(t *testing.T) {
	w := newIdleExit(0, func() int64 { return 0 })
	if w != nil {
		t.Fatalf("newIdleExit(0) = %v, want nil", w)
	}
	w.connState(http.StateNew) // a nil watch takes the hook's calls
	if ch := w.watch(make(chan struct{})); ch != nil {
		t.Errorf("watch of a nil idleExit = %v, want nil (never ready)", ch)
	}
}
