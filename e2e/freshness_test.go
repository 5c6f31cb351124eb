//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --max-age and --no-cache ask for a value fresher than the cache keeps,
// in every command that reads. That concurrent fresh reads share one call
// is TestReadsShareBackendCalls.
func TestMaxAgeAndNoCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	calls := func() uint64 { return e.Status().BackendCalls }
	e.MustOpx("read", "op://v/i/a")
	base := calls()

	e.MustOpx("read", "--max-age", "1h", "op://v/i/a")
	if n := calls() - base; n != 0 {
		t.Errorf("--max-age 1h on a fresh value: %d backend calls, want 0", n)
	}
	tmpl := filepath.Join(e.Dir, "t.tpl")
	os.WriteFile(tmpl, []byte("{{ op://v/i/a }}"), 0o600)
	for i, args := range [][]string{
		{"read", "--no-cache", "op://v/i/a"},
		{"read", "--max-age", "0s", "op://v/i/a"},
		{"resolve", "--no-cache", "A=op://v/i/a"},
		{"run", "--no-cache", "--env", "A=op://v/i/a", "--", "true"},
		{"inject", "--no-cache", "-i", tmpl},
	} {
		before := calls()
		if r := e.Opx(args...); r.Code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, r.Code, r.Stderr)
		}
		if n := calls() - before; n != 1 {
			t.Errorf("%d: %q made %d backend calls, want 1", i, args, n)
		}
	}
	time.Sleep(30 * time.Millisecond)
	before := calls()
	e.MustOpx("read", "--max-age", "10ms", "op://v/i/a")
	if n := calls() - before; n != 1 {
		t.Errorf("--max-age 10ms on a 30ms-old value: %d backend calls, want 1", n)
	}
	if r := e.Opx("read", "--max-age", "-5s", "op://v/i/a"); r.Code == 0 || !strings.Contains(r.Stderr, "--max-age") {
		t.Errorf("--max-age -5s: exit %d, stderr %q", r.Code, r.Stderr)
	}
}
