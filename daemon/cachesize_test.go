package daemon

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// fillCache reads n distinct refs through /v1/reads, so that n values are
// cached.
func fillCache(t testing.TB, h http.Handler, n int) {
	t.Helper()
	for start := 0; start < n; start += 1000 {
		var refs []string
		for i := start; i < min(n, start+1000); i++ {
			refs = append(refs, fmt.Sprintf(`"op://fill/item%d/field"`, i))
		}
		if code, body := do(t, h, "POST", "/v1/reads", `{"refs":[`+strings.Join(refs, ",")+`]}`, testToken); code != 200 {
			t.Fatalf("fill: %d %s", code, body)
		}
	}
}

// cachedReadCost is the allocations and bytes of one cached /v1/read.
func cachedReadCost(t *testing.T, cached int) (allocs, bytes float64) {
	s, h := newTestServerSized(t, 0, 20000)
	fillCache(t, h, cached)
	if got := s.core.cache.Len(); got < cached {
		t.Fatalf("cache holds %d values, want %d", got, cached)
	}
	read := func() {
		if code, body := do(t, h, "POST", "/v1/read", `{"ref":"op://fill/item0/field"}`, testToken); code != 200 {
			t.Fatalf("read: %d %s", code, body)
		}
	}
	read()
	const runs = 500
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		read()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / runs, float64(after.TotalAlloc-before.TotalAlloc) / runs
}

// A cached read costs the same with ten values cached as with ten
// thousand: nothing on its path walks or copies the cache.
func TestCachedReadCostDoesNotGrowWithTheCache(t *testing.T) {
	smallA, smallB := cachedReadCost(t, 10)
	bigA, bigB := cachedReadCost(t, 10000)
	t.Logf("one cached read: %.1f allocations, %.0f bytes with 10 values cached; %.1f, %.0f with 10,000", smallA, smallB, bigA, bigB)
	// A little slack for the test's own goroutines (the cache janitor, the
	// session timer) allocating during the runs.
	if bigA > smallA+1 || bigB > smallB+256 {
		t.Errorf("a cached read costs more with 10,000 values cached (%.1f allocations, %.0f bytes) than with 10 (%.1f, %.0f)",
			bigA, bigB, smallA, smallB)
	}
}
