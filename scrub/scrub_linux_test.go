package scrub

import (
	"syscall"
	"testing"
	"time"
)

// TestDoKeepsFOnOneThread checks that f's copies stay on the thread whose
// registers Do clears, even when f blocks (as it does waiting for op).
func TestDoKeepsFOnOneThread(t *testing.T) {
	for range 20 {
		var before, after int
		Do(func() {
			before = syscall.Gettid()
			time.Sleep(time.Millisecond)
			after = syscall.Gettid()
		})
		if before != after {
			t.Fatalf("f ran on thread %d, then on %d", before, after)
		}
	}
}
