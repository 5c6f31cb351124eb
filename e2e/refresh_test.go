//go:build unix

package e2e

import (
	"testing"
	"time"
)

// A reader every 200 ms, values living 6 s, a backend taking 1 s: with
// refresh-ahead, every answer after the first comes from the cache while
// background refreshes keep it fresh; without, the reader waits on the
// backend every time a value expires. Counts, not times.
//
// A refresh starts three backend calls' time (3 s) before the value
// expires, so it has 2 s to spare for a late timer or a slow call on a
// machine saturated by the parallel tests.
func TestRefreshAheadKeepsASteadyReaderOffTheBackend(t *testing.T) {
	t.Parallel()
	refs := []string{"op://v/i/a", "op://v/i/b"}
	run := func(t *testing.T, flag string, reads int) (misses int, calls, refreshes uint64) {
		e := newEnv(t)
		e.StartDaemon("", "--backend=fake", "--fake-delay=1s", "--ttl=6s", flag)
		for i := range reads {
			res, errs := e.readResults(refs...)
			if len(errs) > 0 {
				t.Fatalf("read %d: %v", i, errs)
			}
			for _, ref := range refs {
				if r := res[ref]; i > 0 && !r.FromCache {
					misses++
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		st := e.Status()
		t.Logf("%s, %d reads of %d refs: %d waited, %d backend calls, %d refreshes", flag, reads, len(refs), misses, st.BackendCalls, st.Refreshes)
		return misses, st.BackendCalls, st.Refreshes
	}
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		misses, calls, refreshes := run(t, "--refresh-ahead", 90) // 18 s
		if misses != 0 {
			t.Errorf("with refresh-ahead, %d answers after the first waited on the backend, want 0", misses)
		}
		// One refresh of both values about every 4 s (6 s of life, less
		// the 3 s lead, plus the 1 s call), each pair in one backend call.
		if refreshes < 6 || calls < 4 || calls > refreshes {
			t.Errorf("with refresh-ahead: %d backend calls, %d refreshes; want the refreshes batched by two, at least 3 rounds", calls, refreshes)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		misses, _, refreshes := run(t, "--no-refresh-ahead", 75) // 15 s: two expiries
		if misses < 4 || refreshes != 0 {
			t.Errorf("without refresh-ahead: %d answers waited, %d refreshes; want the reader to wait at each expiry", misses, refreshes)
		}
	})
}
