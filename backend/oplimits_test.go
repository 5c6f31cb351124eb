package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

func TestRateLimitAnswer(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		wait   time.Duration
	}{
		{"[ERROR] 2023/06/26 11:55:32 (429) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make. Please retry in 58 minutes or try other requests.", 58 * time.Minute},
		{"[ERROR] 2026/11/29 10:00:00 (429) Too Many Requests: Please retry in 1 hour.", time.Hour},
		{"[ERROR] 2026/11/29 10:00:00 (429) Too Many Requests", 0},
		{"[ERROR] 2026/12/03 10:00:00 (429) Too Many Requests: You've reached the maximum number of this type of requests this 1Password account is allowed to make. Please retry in 23 hours and 59 minutes or try other requests.", 23*time.Hour + 59*time.Minute},
		{"[ERROR] 2026/12/03 10:00:00 (429) Too Many Requests: Please retry in 1 hour, 2 minutes and 3 seconds.", time.Hour + 2*time.Minute + 3*time.Second},
	} {
		e := classifyOPError(tc.stderr, "team", Desktop)
		if e.Code != api.CodeRateLimited || time.Duration(e.RetryAfterSeconds*float64(time.Second)) != tc.wait {
			t.Errorf("classifyOPError(%q) = %s, wait %vs; want rate_limited, %v", tc.stderr, e.Code, e.RetryAfterSeconds, tc.wait)
		}
	}
}

func TestOPLimits(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	l := newOPLimits(OPBudget{PerHour: 3, PerDay: 5})
	l.now = func() time.Time { return now }
	for i := range 3 {
		if err := l.take(usageKey{account: "a"}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if err := l.take(usageKey{account: "a"}); err == nil || !strings.Contains(err.Error(), "3/hour, 5/day") {
		t.Errorf("4th call in an hour = %v, want the budget named", err)
	}
	if err := l.take(usageKey{account: "b"}); err != nil {
		t.Errorf("another account's call = %v", err)
	}
	now = now.Add(61 * time.Minute)
	for i := range 2 {
		if err := l.take(usageKey{account: "a"}); err != nil {
			t.Fatalf("call %d in the next hour: %v", i, err)
		}
	}
	if err := l.take(usageKey{account: "a"}); err == nil {
		t.Error("6th call in a day allowed")
	}
	now = now.Add(24 * time.Hour)
	if err := l.take(usageKey{account: "a"}); err != nil {
		t.Errorf("call the next day: %v", err)
	}
	// 1Password's back-off, without a wait named: a minute.
	l.backOff(usageKey{account: "c"}, api.Errorf(api.CodeRateLimited, "(429) Too Many Requests"))
	if err := l.take(usageKey{account: "c"}); err == nil {
		t.Error("call during the back-off allowed")
	}
	now = now.Add(61 * time.Second)
	if err := l.take(usageKey{account: "c"}); err != nil {
		t.Errorf("call after the back-off: %v", err)
	}
	if _, err := ParseOPBudget([]string{"10/week"}); err == nil {
		t.Error("10/week accepted")
	}
	if b, err := ParseOPBudget([]string{"10/hour", " 100/day"}); err != nil || b != (OPBudget{10, 100}) {
		t.Errorf("ParseOPBudget = %+v, %v", b, err)
	}
}
