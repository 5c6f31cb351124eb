//go:build unix

package e2e

import (
	"strings"
	"testing"
)

// op's rate-limit answer is rate_limited with op's wait; during the
// back-off no op process starts for the account, cached values are still
// served, and status shows it.
func TestOPRateLimitBacksOff(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.StartDaemon("", "--stale-if-error=0")
	if out := e.MustOpx("read", "op://Private/db/username"); out != "app\n" {
		t.Fatalf("read = %q", out)
	}
	e.setTrouble("ratelimit", "58 minutes")
	r := e.Opx("read", "op://Private/db/password")
	if r.Code != 1 || !strings.Contains(r.Stderr, "rate_limited") || !strings.Contains(r.Stderr, "Too Many Requests") {
		t.Fatalf("read when op is rate-limited = %+v", r)
	}
	res, errs := e.readResults("op://Private/db/password")
	if e, ok := errs["op://Private/db/password"]; len(res) != 0 || !ok || e.Code != "rate_limited" || e.RetryAfterSeconds < 57*60 || e.RetryAfterSeconds > 58*60 {
		t.Errorf("answer during the back-off = %+v, want rate_limited with about 58 minutes to wait", errs)
	}
	// 1Password would answer again, but the account is backed off: no op
	// process is started until the wait is over.
	e.setTrouble("", "")
	before := len(e.opLogPIDs())
	for range 3 {
		if r := e.Opx("read", "op://Private/db/password"); r.Code != 1 || !strings.Contains(r.Stderr, "rate_limited") || !strings.Contains(r.Stderr, "no op call is made") {
			t.Errorf("read during the back-off = %+v", r)
		}
	}
	if n := len(e.opLogPIDs()) - before; n != 0 {
		t.Errorf("%d op processes during the back-off, want 0", n)
	}
	if out := e.MustOpx("read", "op://Private/db/username"); out != "app\n" {
		t.Errorf("cached value during the back-off = %q", out)
	}
	st := e.Status()
	if len(st.OPCalls) != 1 || st.OPCalls[0].RateLimitedUntilUnix == 0 || st.OPCalls[0].LastHour != 2 {
		t.Errorf("status op_calls = %+v, want the account rate-limited after 2 calls", st.OPCalls)
	}
	if out := e.MustOpx("status"); !strings.Contains(out, "rate-limited by 1Password until") {
		t.Errorf("status does not say the account is rate-limited:\n%s", out)
	}
}

// --op-budget caps opx's own op calls: past it, cached values are served
// and the rest refused with rate_limited naming the budget, with no op
// process.
func TestOPBudget(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.StartDaemon("", "--op-budget=2/hour,100/day")
	e.MustOpx("read", "op://Private/db/username")
	e.MustOpx("read", "op://Private/db/password")
	before := len(e.opLogPIDs())
	r := e.Opx("read", "op://Work Vault/API Token/credential")
	if r.Code != 1 || !strings.Contains(r.Stderr, "rate_limited") || !strings.Contains(r.Stderr, "--op-budget 2/hour, 100/day") {
		t.Errorf("read past the budget = %+v", r)
	}
	if n := len(e.opLogPIDs()) - before; n != 0 {
		t.Errorf("%d op processes past the budget, want 0", n)
	}
	if out := e.MustOpx("read", "op://Private/db/password"); out != "s3cr3t-db-pass\n" {
		t.Errorf("cached value past the budget = %q", out)
	}
	st := e.Status()
	if st.Settings.OPBudget != "2/hour, 100/day" || len(st.OPCalls) != 1 || st.OPCalls[0].LastHour != 2 || st.OPCalls[0].LastDay != 2 {
		t.Errorf("status: budget %q, op_calls %+v", st.Settings.OPBudget, st.OPCalls)
	}
	if r := e.Opx("daemon", "--op-budget=lots"); r.Code == 0 || !strings.Contains(r.Stderr, "N/hour or N/day") {
		t.Errorf("daemon --op-budget=lots = %+v", r)
	}
}
