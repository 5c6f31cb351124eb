package backend

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

// TestSAGovernor: the governor asks op once, counts opx's own requests,
// refuses before the reserve is spent (saying until when), asks again when
// its count says the limit is near, when the window has ended, and after
// a 429; the desktop is never governed.
func TestSAGovernor(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := newSAGovernor()
	g.now = func() time.Time { return now }
	id := NewOPIdentity(&api.OPIdentity{ServiceAccountToken: api.Secret("ops_gov")})
	remaining, asks := 40, 0
	ask := func(context.Context) ([]api.OPLimit, error) {
		asks++
		out := `[{"type":"token","action":"write","limit":100,"used":0,"remaining":100,"reset":0},
			{"type":"token","action":"read","limit":100,"used":` + itoa(100-remaining) + `,"remaining":` + itoa(remaining) + `,"reset":1800},
			{"type":"account","action":"read_write","limit":5000,"used":10,"remaining":4990,"reset":80000}]`
		return parseRateLimit([]byte(out), now)
	}
	ctx := context.Background()
	// The reserve of a 100-read limit is 5: 40 left allows 35 in calls of 1.
	for i := range 35 {
		if err := g.before(ctx, id, 1, ask); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if asks != 1 {
		t.Errorf("op was asked %d times for 35 calls, want once", asks)
	}
	err := g.before(ctx, id, 1, ask)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeRateLimited || ae.RetryAfterSeconds != 1800 || !strings.Contains(ae.Message, "5 of its 100 read") {
		t.Fatalf("call 36: %v (%+v), want rate_limited until the window's end", err, ae)
	}
	if strings.Contains(ae.Message, "ops_gov") {
		t.Errorf("the refusal names the token: %s", ae.Message)
	}
	// Others freed nothing; 10 s later op is asked again, and says more
	// is left (another window, another count).
	now = now.Add(11 * time.Second)
	remaining = 90
	if err := g.before(ctx, id, 3, ask); err != nil || asks != 2 {
		t.Errorf("after a new ask: %v, %d asks", err, asks)
	}
	if l := g.limits(id.Fingerprint); len(l) != 3 || l[1].Remaining != 87 || l[1].ResetUnix != now.Add(1800*time.Second).Unix() {
		t.Errorf("limits = %+v, want 87 reads left", l)
	}
	// A 429 makes the next call ask again; so does the window's end.
	g.rateLimited(id)
	g.before(ctx, id, 1, ask)
	now = now.Add(2 * time.Hour)
	g.before(ctx, id, 1, ask)
	if asks != 4 {
		t.Errorf("asks = %d after a 429 and a window's end, want 4", asks)
	}
	// The desktop, and calls that cost nothing, never ask.
	if err := g.before(ctx, Desktop, 1, ask); err != nil || asks != 4 {
		t.Errorf("desktop: %v, %d asks", err, asks)
	}
	if err := g.before(ctx, id, readCost([]string{"service-account", "ratelimit"}), ask); err != nil || asks != 4 {
		t.Errorf("ratelimit itself: %v, %d asks", err, asks)
	}
	// op that cannot say lets the call go.
	other := NewOPIdentity(&api.OPIdentity{ServiceAccountToken: api.Secret("ops_other")})
	if err := g.before(ctx, other, 1, func(context.Context) ([]api.OPLimit, error) { return nil, errors.New("old op") }); err != nil {
		t.Errorf("op could not say: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParseRateLimitRejectsGarbage(t *testing.T) {
	for _, out := range []string{"", "TYPE ACTION", `[{"type":"token"}]`, `{"type":"token"}`} {
		if _, err := parseRateLimit([]byte(out), time.Now()); err == nil {
			t.Errorf("parseRateLimit(%q) = nil error", out)
		}
	}
}
