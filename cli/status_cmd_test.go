package cli

import (
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
