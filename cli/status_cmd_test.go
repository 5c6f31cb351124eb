package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

// opx status says when an --exit-when-idle daemon stops if no client
// comes after this one, or what keeps it busy now; nothing when it is off.
func TestIdleExitLine(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.Local)
	status := func(after float64, open int, inFlight int64) *api.Status {
		return &api.Status{Settings: api.Settings{ExitWhenIdleSeconds: after}, Connections: api.Connections{Open: open}, InFlight: inFlight}
	}
	for _, c := range []struct {
		name string
		st   *api.Status
		want string
	}{
		{"off", status(0, 1, 0), ""},
		{"only this status", status(300, 1, 0), "  idle exit after 5m0s with no connection and no backend call: at 10:05:00 if no client comes\n"},
		{"another client", status(300, 2, 0), "  idle exit after 5m0s with no connection and no backend call; busy now: 1 connection open besides this one, 0 reads in flight\n"},
		{"a backend call", status(2, 1, 1), "  idle exit after 2s with no connection and no backend call; busy now: 0 connections open besides this one, 1 read in flight\n"},
	} {
		if got := idleExitLine(c.st, now); got != c.want {
			t.Errorf("%s: idleExitLine = %q, want %q", c.name, got, c.want)
		}
	}
}

// opx status names each locked account and why, and the command that
// unlocks it once: op's answer for a locked 1Password app names it itself.
func TestStatusNamesLockedAccounts(t *testing.T) {
	st := &api.Status{Session: api.SessionStatus{State: api.StateUnlocked, LockedAccounts: []api.LockedAccount{
		{Account: "", Reason: "1Password CLI: error initializing client: authorization timeout; the 1Password app is locked or did not authorize op: unlock the 1Password app, then run: opx unlock"},
		{Account: "team", Reason: "1Password CLI: You are not currently signed in; sign in with: opx login 1password --account team"},
	}}}
	out := formatStatus(st)
	for _, want := range []string{
		"            the default account locked: 1Password CLI: error initializing client: authorization timeout; the 1Password app is locked or did not authorize op: unlock the 1Password app, then run: opx unlock\n",
		"            account team locked: 1Password CLI: You are not currently signed in; sign in with: opx login 1password --account team; then run: opx unlock\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("formatStatus has no line %q:\n%s", want, out)
		}
	}
}
