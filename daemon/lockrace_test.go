package daemon

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/session"
)

// lockWatch is a backend that records every call that reaches it with a
// live context after the session's lock has returned: such a call would
// run the backend (an op process, a Vault read) for nobody.
type lockWatch struct {
	scripted
	lockReturned atomic.Bool
	whileLocked  atomic.Int64
}

func (l *lockWatch) Read(ctx context.Context, account string, refs []string) []backend.Result {
	if l.lockReturned.Load() && ctx.Err() == nil {
		l.whileLocked.Add(1)
	}
	return l.scripted.Read(ctx, account, refs)
}

// TestCoreLockRace reads distinct refs in a loop from several goroutines
// while the session locks. Once the lock has happened, nothing fetched for a
// request may be in the cache (it would be served after the next unlock), and
// no backend call may run for the old epoch once the lock has returned. Issue #10 found
// 250 values cached after a lock on the old main, where the locked check and
// the epoch were read under two locks.
func TestCoreLockRace(t *testing.T) {
	for round := range 20 {
		b := &lockWatch{scripted: scripted{answer: func(ref string) backend.Result {
			return backend.Result{Value: []byte("v:" + ref)}
		}}}
		c, s := newTestCore(t, b, coreConfig{})

		stop := make(chan struct{})
		var wg sync.WaitGroup
		var n atomic.Int64
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					ref := fmt.Sprintf("op://v/r%d-g%d-i%d/f", round, g, i)
					c.resolve(context.Background(), "", backend.Desktop, []string{ref}, -1)
					n.Add(1)
				}
			}()
		}
		for n.Load() < 200 {
			time.Sleep(time.Millisecond)
		}
		s.Lock(session.ReasonManual)
		b.lockReturned.Store(true)
		time.Sleep(20 * time.Millisecond) // readers keep racing the locked session
		close(stop)
		wg.Wait()
		c.wg.Wait() // backend calls still running finish
		if got := c.cache.Len(); got != 0 {
			t.Fatalf("round %d: %d values cached after the lock (they would be served after unlock)", round, got)
		}
		if got := b.whileLocked.Load(); got != 0 {
			t.Fatalf("round %d: %d backend calls ran with a live context after the lock", round, got)
		}
		s.Unlock()
		b.lockReturned.Store(false)
	}
}
