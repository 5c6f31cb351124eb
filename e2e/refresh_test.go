package e2e

import (
	"testing"
	"time"
)

// A reader every 200 ms for 10 s, values living 2 s, a backend taking
// 300 ms: with refresh-ahead, every answer after the first comes from the
// cache while background refreshes keep it fresh; without, the reader
// waits on the backend every time a value expires. Counts, not times.
//
// It runs alone, not in parallel: a refresh starts about 1 s before the
// value expires, and on a machine saturated by the parallel tests the
// race-built daemon's timer and the fake backend's 300 ms can run late by
// more than that, which would count as the reader waiting.
func TestRefreshAheadKeepsASteadyReaderOffTheBackend(t *testing.T) {
	refs := []string{"op://v/i/a", "op://v/i/b"}
	run := func(flag string, reads int) (misses int, calls, refreshes uint64) {
		e := newEnv(t)
		e.StartDaemon("", "--backend=fake", "--fake-delay=300ms", "--ttl=2s", flag)
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
	misses, calls, refreshes := run("--refresh-ahead", 50)
	if misses != 0 {
		t.Errorf("with refresh-ahead, %d answers after the first waited on the backend, want 0", misses)
	}
	// About one refresh of both values every 1.1-1.6 s for 10 s, each
	// pair in one backend call.
	if refreshes < 8 || calls < 5 || calls > refreshes {
		t.Errorf("with refresh-ahead: %d backend calls, %d refreshes; want the refreshes batched by two, at least 4 rounds", calls, refreshes)
	}
	misses, _, refreshes = run("--no-refresh-ahead", 25) // 5 s
	if misses < 3 || refreshes != 0 {
		t.Errorf("without refresh-ahead: %d answers waited, %d refreshes; want the reader to wait at each expiry", misses, refreshes)
	}
}
