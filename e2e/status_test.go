//go:build unix

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

// opx status says when no daemon runs (exit 3) without starting one; with
// one running it shows, in its human and JSON forms, the backend, the
// counters, the idle lock (--session-timeout 8 is hours), the socket and
// the settings in force: backend limits, where op is found and its
// version, the Vault address config.json holds.
func TestStatusShowsStateAndSettings(t *testing.T) {
	// Counting daemons tells this env's from others' only where their
	// environment can be read (harness.DaemonsExact); elsewhere it runs alone.
	if harness.DaemonsExact() {
		t.Parallel()
	}
	e := newOPEnv(t)
	r := e.Opx("status")
	if r.Code != 3 || !strings.Contains(r.Stdout, "not running") {
		t.Fatalf("status with no daemon = %+v, want exit 3 and 'not running'", r)
	}
	if len(e.Daemons()) != 0 {
		t.Fatal("opx status started a daemon")
	}
	e.SignIn("my")
	e.SetConfig(map[string]any{"vault": map[string]any{"address": "http://127.0.0.1:8299"}})
	e.StartDaemon("", "--session-timeout", "8", "--max-concurrent=3", "--backend-timeout=45s")
	e.MustOpx("read", "op://Private/db/password")
	out := e.MustOpx("status")
	for _, want := range []string{"running", "backend   opcli;", "1 miss (0 joined", "1 backend call,", "locks after 8h0m0s",
		"at most 45s, 3 at once", "op        " + harness.Bins().FakeOp + " (version 2.31.1)", "vault     http://127.0.0.1:8299"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	st := e.Status()
	if st.Session.IdleTimeoutSeconds != 8*3600 || !st.Session.Enabled || st.Session.State != "unlocked" || st.SocketPath != e.Sock {
		t.Errorf("status = %+v, want an unlocked session locking after 28800 s idle, on %s", st, e.Sock)
	}
	if st.Settings.MaxConcurrent != 3 || st.Settings.BackendTimeoutSeconds != 45 || st.Settings.OPFound != harness.Bins().FakeOp ||
		st.Settings.OPVersion != "2.31.1" || st.Settings.VaultAddress != "http://127.0.0.1:8299" {
		t.Errorf("status settings: %+v", st.Settings)
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
