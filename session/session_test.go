package session

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

func TestIdleLockAfterTimeout(t *testing.T) {
	var locks atomic.Int32
	reasons := make(chan string, 1)
	s := New(true, 100*time.Millisecond, func(r string) { locks.Add(1); reasons <- r })
	defer s.Close()
	if st := s.Status(); st.State != api.StateUnlocked || st.TimeUntilLockSeconds != 0 {
		t.Fatalf("fresh status = %+v", st)
	}
	time.Sleep(150 * time.Millisecond)
	if s.Locked() {
		t.Fatal("locked before the first read started the countdown")
	}
	s.Touch()
	select {
	case r := <-reasons:
		if r != ReasonIdle {
			t.Errorf("reason = %q, want %q", r, ReasonIdle)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session did not lock when idle")
	}
	if !s.Locked() || s.Status().State != api.StateLocked {
		t.Error("session not locked")
	}
	e := epoch(s)
	if !s.Unlock() {
		t.Error("Unlock() = false on a locked session")
	}
	if epoch(s) != e {
		t.Error("unlock changed the epoch")
	}
	if locks.Load() != 1 {
		t.Errorf("lock callback ran %d times", locks.Load())
	}
}

func TestTouchPostponesLock(t *testing.T) {
	s := New(true, 200*time.Millisecond, nil)
	defer s.Close()
	s.Touch()
	for range 5 {
		time.Sleep(60 * time.Millisecond)
		s.Touch()
	}
	if s.Locked() {
		t.Fatal("session locked although reads kept coming")
	}
}

func TestDisabledNeverIdles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enabled bool
		timeout time.Duration
	}{{"disabled", false, 10 * time.Millisecond}, {"zero timeout", true, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.enabled, tc.timeout, nil)
			defer s.Close()
			s.Touch()
			time.Sleep(40 * time.Millisecond)
			if s.Locked() {
				t.Fatal("locked with the idle lock off")
			}
			if st := s.Status(); st.Enabled || st.TimeUntilLockSeconds != -1 {
				t.Errorf("status = %+v, want disabled with no countdown", st)
			}
			if !s.Lock(ReasonManual) || !s.Locked() {
				t.Error("a manual lock must work with the idle lock off")
			}
		})
	}
}

func TestLockTwiceRunsCallbackOnce(t *testing.T) {
	var n atomic.Int32
	s := New(true, time.Hour, func(string) { n.Add(1) })
	defer s.Close()
	e := epoch(s)
	if !s.Lock(ReasonManual) || s.Lock(ReasonManual) {
		t.Error("Lock() should report true then false")
	}
	if n.Load() != 1 || epoch(s) != e+1 {
		t.Errorf("callbacks = %d, epoch moved by %d; want 1 and 1", n.Load(), epoch(s)-e)
	}
}

func epoch(s *Session) uint64 {
	_, e := s.State()
	return e
}
