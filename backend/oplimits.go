package backend

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opxhq/opx/api"
)

// OPBudget caps opx's own op calls per account: at most PerHour in any hour
// and PerDay in any day (0: no cap). 1Password's service accounts have
// hourly and daily request limits of their own; the budget keeps a
// crash-looping tool from spending them.
type OPBudget struct {
	PerHour, PerDay int
}

// ParseOPBudget reads "N/hour" and "N/day" items.
func ParseOPBudget(items []string) (OPBudget, error) {
	var b OPBudget
	for _, it := range items {
		n, per, ok := strings.Cut(strings.TrimSpace(it), "/")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v < 1 {
			return b, fmt.Errorf("--op-budget %q: want N/hour or N/day, N at least 1", it)
		}
		switch per {
		case "hour", "h":
			b.PerHour = v
		case "day", "d":
			b.PerDay = v
		default:
			return b, fmt.Errorf("--op-budget %q: want N/hour or N/day", it)
		}
	}
	return b, nil
}

// String is the budget as --op-budget takes it.
func (b OPBudget) String() string {
	var parts []string
	if b.PerHour > 0 {
		parts = append(parts, strconv.Itoa(b.PerHour)+"/hour")
	}
	if b.PerDay > 0 {
		parts = append(parts, strconv.Itoa(b.PerDay)+"/day")
	}
	return strings.Join(parts, ", ")
}

// opUsage counts one account's op calls in per-minute buckets over a day.
type opUsage struct {
	minute [24 * 60]int64 // the minute (Unix minutes) each bucket counts
	count  [24 * 60]int32
	until  time.Time // rate-limited by 1Password until then
	reason string    // op's message for it
}

func (u *opUsage) add(now time.Time) {
	m := now.Unix() / 60
	i := m % int64(len(u.minute))
	if u.minute[i] != m {
		u.minute[i], u.count[i] = m, 0
	}
	u.count[i]++
}

// last sums the calls of the last n minutes.
func (u *opUsage) last(now time.Time, n int64) int {
	m := now.Unix() / 60
	total := 0
	for i := range u.minute {
		if d := m - u.minute[i]; d >= 0 && d < n {
			total += int(u.count[i])
		}
	}
	return total
}

// opLimits is the rate-limit state of the op backend: calls per account,
// 1Password's back-off, and the budget.
type opLimits struct {
	budget OPBudget
	now    func() time.Time

	mu       sync.Mutex
	accounts map[usageKey]*opUsage
}

// usageKey is whose calls an opUsage counts: an account ("" for the
// default one) as an identity (its fingerprint; "" for the desktop).
type usageKey struct {
	account, identity string
	kind              string // the identity's kind, for status
}

// keyOf is the usageKey of account read as id.
func keyOf(account string, id OPIdentity) usageKey {
	return usageKey{account: account, identity: id.Fingerprint, kind: id.Kind}
}

// label names k in messages.
func (k usageKey) label() string {
	if k.identity == "" {
		return accountLabel(k.account)
	}
	return accountLabel(k.account) + " as " + kindLabel(k.kind) + " " + ShortFingerprint(k.identity)
}

// kindLabel is an identity kind in words.
func kindLabel(kind string) string {
	if kind == api.IdentityConnect {
		return "Connect server"
	}
	return "service account"
}

func newOPLimits(b OPBudget) *opLimits {
	return &opLimits{budget: b, now: time.Now, accounts: map[usageKey]*opUsage{}}
}

func (l *opLimits) usage(k usageKey) *opUsage {
	u := l.accounts[k]
	if u == nil {
		u = &opUsage{}
		l.accounts[k] = u
	}
	return u
}

// take counts a call for account, or refuses it (rate_limited) while
// 1Password asked to back off or the budget is spent: no op process is
// started then.
func (l *opLimits) take(k usageKey) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	u := l.usage(k)
	if now.Before(u.until) {
		left := u.until.Sub(now)
		return &api.Error{Code: api.CodeRateLimited, RetryAfterSeconds: left.Seconds(),
			Message: fmt.Sprintf("1Password rate-limited %s until %s (%s); no op call is made before then: %s",
				k.label(), u.until.Format(time.TimeOnly), left.Round(time.Second), u.reason)}
	}
	if b := l.budget; b.PerHour > 0 && u.last(now, 60) >= b.PerHour || b.PerDay > 0 && u.last(now, 24*60) >= b.PerDay {
		return &api.Error{Code: api.CodeRateLimited, RetryAfterSeconds: 60,
			Message: fmt.Sprintf("opx's op budget (--op-budget %s) for %s is spent: %d calls in the last hour, %d in the last day",
				b, k.label(), u.last(now, 60), u.last(now, 24*60))}
	}
	u.add(now)
	return nil
}

// backingOff returns take's refusal while 1Password asked k to back off,
// without counting a call.
func (l *opLimits) backingOff(k usageKey) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	u := l.accounts[k]
	if u == nil || !now.Before(u.until) {
		return nil
	}
	left := u.until.Sub(now)
	return &api.Error{Code: api.CodeRateLimited, RetryAfterSeconds: left.Seconds(),
		Message: fmt.Sprintf("1Password rate-limited %s until %s (%s); no op call is made before then: %s",
			k.label(), u.until.Format(time.TimeOnly), left.Round(time.Second), u.reason)}
}

// backOff records 1Password's rate-limit answer for account.
func (l *opLimits) backOff(k usageKey, e *api.Error) {
	wait := time.Duration(e.RetryAfterSeconds * float64(time.Second))
	if wait <= 0 {
		wait = time.Minute
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.usage(k)
	u.until, u.reason = l.now().Add(wait), e.Message
}

// status is the calls per account for /v1/status, with what limitsOf
// says of each service account's limits.
func (l *opLimits) status(limitsOf func(fp string) []api.OPLimit) []api.OPUsage {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	out := make([]api.OPUsage, 0, len(l.accounts))
	for k, u := range l.accounts {
		s := api.OPUsage{Account: k.account, LastHour: u.last(now, 60), LastDay: u.last(now, 24*60)}
		if now.Before(u.until) {
			s.RateLimitedUntilUnix = u.until.Unix()
		}
		if k.identity != "" {
			s.Identity, s.IdentityKind = ShortFingerprint(k.identity), k.kind
			if limitsOf != nil {
				s.Limits = limitsOf(k.identity)
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Identity != out[j].Identity {
			return out[i].Identity < out[j].Identity
		}
		return out[i].Account < out[j].Account
	})
	return out
}

// rateLimitError is op's rate-limit answer as an error with its wait, when
// op names one ("Please retry in 58 minutes").
func rateLimitError(msg string) *api.Error {
	e := api.Errorf(api.CodeRateLimited, "1Password CLI: %s", msg)
	e.RetryAfterSeconds = retryIn(msg).Seconds()
	return e
}

// retryIn reads "retry in N seconds|minutes|hours", or several of them
// ("23 hours and 59 minutes"), in msg (by hand: a regexp would be compiled
// at start-up in every opx process).
func retryIn(msg string) time.Duration {
	low := strings.ToLower(msg)
	i := strings.Index(low, "retry in ")
	if i < 0 {
		return 0
	}
	rest := low[i+len("retry in "):]
	var total time.Duration
	for {
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(rest[:j])
		if err != nil {
			return total
		}
		rest = strings.TrimLeft(rest[j:], " ")
		switch {
		case strings.HasPrefix(rest, "second"):
			total += time.Duration(n) * time.Second
		case strings.HasPrefix(rest, "minute"):
			total += time.Duration(n) * time.Minute
		case strings.HasPrefix(rest, "hour"):
			total += time.Duration(n) * time.Hour
		default:
			return total
		}
		// On to the next part: "and 59 minutes", ", 3 seconds".
		k := strings.IndexAny(rest, " ,")
		if k < 0 {
			return total
		}
		rest = strings.TrimLeft(rest[k:], " ,")
		rest = strings.TrimPrefix(rest, "and ")
	}
}
