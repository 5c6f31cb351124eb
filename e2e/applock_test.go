//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/e2e/harness"
)

// TestOPLockedAppLocksItsAccountsValues: when 1Password's app locks, the
// first op answer that says so locks that account in opx at once, cached
// values included, with the daemon's defaults (issue 27). Its cached value
// is refused, not served, and left nowhere in the daemon's memory; an
// account the app does not hold is still served; opx unlock, once the app
// is unlocked, has the values fetched again.
func TestOPLockedAppLocksItsAccountsValues(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my", "team")
	values := [][]byte{[]byte(randomValue("opxlock-", 32)), []byte(randomValue("opxlock-", 32))}
	e.WriteFixture("app", map[string]string{"a": string(values[0]), "b": string(values[1])})
	cmd := e.StartDaemon("")
	const a, b, teamRef = "op://Infra/app/a", "op://Infra/app/b", "op://Private/db/password"
	if out := e.MustOpx("read", a); out != string(values[0])+"\n" {
		t.Fatalf("read %s = %q", a, out)
	}

	// The app that holds the default account ("my") locks; the next op
	// call for that account says so.
	setAppLocked(t, e, true)
	calls := len(e.OpCalls())
	r := e.Opx("read", b)
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "authorization timeout") ||
		!strings.Contains(r.Stderr, "unlock the 1Password app") || strings.Count(r.Stderr, "opx unlock") != 1 || strings.Contains(r.Stderr, "opx login") {
		t.Fatalf("read of an uncached ref while the app is locked = %+v, want op's answer and to unlock the app, then opx unlock", r)
	}
	r = e.Opx("read", a)
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "session_locked") || !strings.Contains(r.Stderr, "the default account") {
		t.Errorf("read of the locked account's cached ref = %+v, want session_locked and no value", r)
	}
	if n := len(e.OpCalls()) - calls; n != 1 {
		t.Errorf("%d op calls for the two reads, want 1 (the one that met the locked app)", n)
	}
	t.Run("memory", func(t *testing.T) {
		harness.AssertNoSecrets(t, cmd.Process.Pid, values)
	})
	if out := e.MustOpx("--account", "team", "read", teamRef); out != "team-db-pass\n" {
		t.Errorf("read of an account the locked app does not hold = %q", out)
	}

	// opx status names the locked account and why, in text and in JSON.
	if out := e.MustOpx("status"); !strings.Contains(out, "the default account locked: 1Password CLI: could not read secret '"+b+"': error initializing client: authorization timeout") {
		t.Errorf("status does not name the locked account and why:\n%s", out)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(e.MustOpx("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if l := st.Session.LockedAccounts; len(l) != 1 || l[0].Account != "" || !strings.Contains(l[0].Reason, "authorization timeout") {
		t.Errorf("status --json locked_accounts = %+v, want the default account, with op's answer", l)
	}

	if r := e.Opx("unlock"); r.Code != 1 || !strings.Contains(r.Stderr, "authorization timeout") {
		t.Errorf("unlock while the app is still locked = %+v, want op's refusal", r)
	}
	setAppLocked(t, e, false)
	e.MustOpx("unlock")
	calls = len(e.OpCalls())
	if out, want := e.MustOpx("read", a, b), string(values[0])+"\n"+string(values[1])+"\n"; out != want {
		t.Errorf("read after unlock = %q, want %q", out, want)
	}
	if n := len(e.OpCalls()) - calls; n != 1 {
		t.Errorf("%d op calls for the read after unlock, want 1: the values were wiped, and fetched again together", n)
	}
}

// setAppLocked locks or unlocks the fake op's 1Password app holding the
// account "my" (the fixture's default).
func setAppLocked(t *testing.T, e *testEnv, locked bool) {
	t.Helper()
	path := filepath.Join(e.Vars["FAKEOP_STATE"], "locked")
	if !locked {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(path, []byte("my\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
