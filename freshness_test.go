package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// --max-age and --no-cache ask for a value fresher than the cache keeps,
// in every command that reads; concurrent fresh reads share one call.
func TestMaxAgeAndNoCache(t *testing.T) {
	e := newEnv(t)
	e.startDaemon("", "--backend=fake")
	calls := func() uint64 { return e.status().BackendCalls }
	e.mustOpx("read", "op://v/i/a")
	base := calls()

	e.mustOpx("read", "--max-age", "1h", "op://v/i/a")
	if n := calls() - base; n != 0 {
		t.Errorf("--max-age 1h on a fresh value: %d backend calls, want 0", n)
	}
	tmpl := filepath.Join(e.root, "t.tpl")
	os.WriteFile(tmpl, []byte("{{ op://v/i/a }}"), 0o600)
	for i, args := range [][]string{
		{"read", "--no-cache", "op://v/i/a"},
		{"read", "--max-age", "0s", "op://v/i/a"},
		{"resolve", "--no-cache", "A=op://v/i/a"},
		{"run", "--no-cache", "--env", "A=op://v/i/a", "--", "true"},
		{"inject", "--no-cache", "-i", tmpl},
	} {
		before := calls()
		if r := e.opx(args...); r.code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if n := calls() - before; n != 1 {
			t.Errorf("%d: %q made %d backend calls, want 1", i, args, n)
		}
	}
	time.Sleep(30 * time.Millisecond)
	before := calls()
	e.mustOpx("read", "--max-age", "10ms", "op://v/i/a")
	if n := calls() - before; n != 1 {
		t.Errorf("--max-age 10ms on a 30ms-old value: %d backend calls, want 1", n)
	}
	if r := e.opx("read", "--max-age", "-5s", "op://v/i/a"); r.code == 0 || !strings.Contains(r.stderr, "--max-age") {
		t.Errorf("--max-age -5s: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestConcurrentFreshReadsShareOneCall(t *testing.T) {
	e := newEnv(t)
	e.startDaemon("", "--backend=fake", "--fake-delay=400ms")
	e.mustOpx("read", "op://v/i/a")
	before := e.status().BackendCalls
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			cmd := exec.Command(opxBin, "read", "--no-cache", "op://v/i/a")
			cmd.Env = e.environ()
			if out, err := cmd.CombinedOutput(); err != nil || string(out) != fv("op://v/i/a")+"\n" {
				t.Errorf("read --no-cache: %v, %q", err, out)
			}
		})
	}
	wg.Wait()
	if n := e.status().BackendCalls - before; n != 1 {
		t.Errorf("8 concurrent --no-cache reads made %d backend calls, want 1", n)
	}
}
