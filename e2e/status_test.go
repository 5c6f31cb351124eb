package e2e

// opx status and the session: the human and JSON forms, the idle lock.

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/e2e/harness"
)

func TestStatusHumanJSONAndNotRunning(t *testing.T) {
	// Counting daemons tells this env's from others' only where their
	// environment can be read (harness.DaemonsExact); elsewhere it runs alone.
	if harness.DaemonsExact() {
		t.Parallel()
	}
	e := newEnv(t)
	r := e.Opx("status")
	if r.Code != 3 || !strings.Contains(r.Stdout, "not running") {
		t.Fatalf("status with no daemon = %+v, want exit 3 and 'not running'", r)
	}
	if len(e.Daemons()) != 0 {
		t.Fatal("opx status started a daemon")
	}
	e.StartDaemon("", "--backend=fake", "--session-timeout=90s")
	e.MustOpx("read", "op://a/b/c")
	out := e.MustOpx("status")
	for _, want := range []string{"running", "backend   fake;", "1 miss (0 joined", "1 backend call,", "locks after 1m30s"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	st := e.Status()
	if st.Session.IdleTimeoutSeconds != 90 || st.Session.State != "unlocked" || st.SocketPath != e.Sock {
		t.Errorf("status = %+v", st)
	}
}

func TestSessionTimeoutInHours(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake", "--session-timeout", "8")
	if st := e.Status(); st.Session.IdleTimeoutSeconds != 8*3600 || !st.Session.Enabled {
		t.Errorf("--session-timeout 8: %+v, want 28800 s", st.Session)
	}
}

func TestSessionIdleLockWipesAndUnlocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake", "--session-timeout=2s")
	e.MustOpx("read", "op://a/b/c")
	deadline := time.Now().Add(15 * time.Second)
	for e.Status().Session.State != "locked" {
		if time.Now().After(deadline) {
			t.Fatal("session did not lock after 2 s idle")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st := e.Status(); st.CacheSize != 0 {
		t.Errorf("cache size when locked = %d, want 0", st.CacheSize)
	}
	r := e.Opx("read", "op://a/b/c")
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "locked") || !strings.Contains(r.Stderr, "opx: hint: run: opx unlock") {
		t.Fatalf("read while locked = %+v", r)
	}
	if out := e.MustOpx("unlock"); !strings.Contains(out, "unlocked") {
		t.Errorf("opx unlock = %q", out)
	}
	if out := e.MustOpx("read", "op://a/b/c"); out != fv("op://a/b/c")+"\n" {
		t.Errorf("read after unlock = %q", out)
	}
	if out := e.MustOpx("lock"); !strings.Contains(out, "locked") {
		t.Errorf("opx lock = %q", out)
	}
	if st := e.Status(); st.Session.State != "locked" || st.CacheSize != 0 {
		t.Errorf("after opx lock: %+v", st)
	}
}

// statusAs is `opx status --json` run by prog (a peerhelper), for a test
// whose policy allows the test itself nothing (it would get the short
// answer).
func (e *testEnv) statusAs(prog string) api.Status {
	e.T.Helper()
	var st api.Status
	r := e.helper(prog, "opx", "status", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil || r.Code != 0 {
		e.T.Fatalf("status --json run by %s: %v\n%+v", prog, err, r)
	}
	return st
}
