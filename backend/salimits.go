package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/opxhq/opx/api"
)

// A service account has limits 1Password counts per token (reads and
// writes an hour) and per account (requests a day), and op tells them:
// `op service-account ratelimit`. The governor asks it when opx starts
// using a token, after a 429, when its own count says the reads are nearly
// spent, and when a window it knows of has ended; between two asks it
// counts opx's requests itself. It refuses a call before the limit (a
// reserve is kept for what else uses the token), not after: a 429 costs a
// round trip and, for some limits, an hour.
type saGovernor struct {
	mu     sync.Mutex
	tokens map[string]*saState // by identity fingerprint
	now    func() time.Time
}

// saState is what the governor knows of one token.
type saState struct {
	ask    sync.Mutex // one op service-account ratelimit at a time
	limits []api.OPLimit
	asked  time.Time // when op last said; zero: never
}

// readCost is what opx counts for an op call of a service account: op
// read makes up to 3 requests (1Password's table of commands that make
// more than one; 1 when vault and item are IDs), op inject and whoami 1,
// op service-account ratelimit none.
func readCost(args []string) int {
	switch {
	case len(args) == 0:
		return 0
	case args[0] == "read":
		return 3
	case args[0] == "service-account":
		return 0
	}
	return 1
}

// saReserve is the share of a limit the governor leaves unused: for the
// token's other users, and for the requests its own count misses.
func saReserve(limit int) int { return max(limit/50, 5) }

func newSAGovernor() *saGovernor {
	return &saGovernor{tokens: map[string]*saState{}, now: time.Now}
}

func (g *saGovernor) state(fp string) *saState {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.tokens[fp]
	if st == nil {
		st = &saState{}
		g.tokens[fp] = st
	}
	return st
}

// before decides on a call costing cost requests for the service account
// id: nil, or rate_limited with when to retry. ask runs op
// service-account ratelimit for id when the governor needs to know.
func (g *saGovernor) before(ctx context.Context, id OPIdentity, cost int, ask func(context.Context) ([]api.OPLimit, error)) error {
	if id.Kind != api.IdentityServiceAccount || cost == 0 {
		return nil
	}
	st := g.state(id.Fingerprint)
	st.ask.Lock()
	defer st.ask.Unlock()
	now := g.now()
	if g.stale(st, now, cost) {
		limits, err := ask(ctx)
		if err != nil {
			// op could not say (an older op, a network error): the call
			// goes ahead, and its own answer says what is wrong.
			return nil
		}
		g.mu.Lock()
		st.limits, st.asked = limits, now
		g.mu.Unlock()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now = g.now()
	for i, l := range st.limits {
		if l.Action == "write" {
			continue // opx only reads
		}
		if l.Remaining-cost < saReserve(l.Limit) {
			wait := time.Unix(l.ResetUnix, 0).Sub(now)
			if l.ResetUnix == 0 || wait <= 0 {
				wait = time.Minute
			}
			return &api.Error{Code: api.CodeRateLimited, RetryAfterSeconds: wait.Round(time.Second).Seconds(),
				Message: fmt.Sprintf("%s has %d of its %d %s requests left (%s); opx keeps %d in reserve and makes no op call before %s",
					id.Label(), l.Remaining, l.Limit, l.Action, windowName(l.Type), saReserve(l.Limit), now.Add(wait).Format(time.TimeOnly))}
		}
		st.limits[i].Remaining -= cost
	}
	return nil
}

// stale reports whether op must be asked again: never asked, a window has
// ended since, or the count says a limit is nearly spent (op knows of the
// token's other users; opx does not). The governor's lock is not held.
func (g *saGovernor) stale(st *saState, now time.Time, cost int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st.asked.IsZero() {
		return true
	}
	for _, l := range st.limits {
		if l.ResetUnix != 0 && now.Unix() >= l.ResetUnix {
			return true
		}
		if l.Action != "write" && l.Remaining-cost < saReserve(l.Limit) && now.Sub(st.asked) > 10*time.Second {
			return true
		}
	}
	return false
}

// rateLimited forgets what op said of id: the next call asks again.
func (g *saGovernor) rateLimited(id OPIdentity) {
	if id.Kind != api.IdentityServiceAccount {
		return
	}
	st := g.state(id.Fingerprint)
	g.mu.Lock()
	st.asked = time.Time{}
	g.mu.Unlock()
}

// limits returns what the governor knows of the token fp, for status.
func (g *saGovernor) limits(fp string) []api.OPLimit {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st := g.tokens[fp]; st != nil {
		return append([]api.OPLimit(nil), st.limits...)
	}
	return nil
}

func windowName(typ string) string {
	if typ == "account" {
		return "the account's, per day"
	}
	return "the token's, per hour"
}

// parseRateLimit reads op service-account ratelimit --format json: a list
// of {type, action, limit, used, remaining, reset}, reset in seconds from
// now (0: no window open).
func parseRateLimit(out []byte, now time.Time) ([]api.OPLimit, error) {
	var rows []struct {
		Type      string `json:"type"`
		Action    string `json:"action"`
		Limit     int    `json:"limit"`
		Remaining int    `json:"remaining"`
		Reset     int64  `json:"reset"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("op service-account ratelimit: %w", err)
	}
	limits := make([]api.OPLimit, 0, len(rows))
	for _, r := range rows {
		if r.Type == "" || r.Action == "" || r.Limit <= 0 {
			return nil, fmt.Errorf("op service-account ratelimit: a row without type, action or limit")
		}
		l := api.OPLimit{Type: r.Type, Action: r.Action, Limit: r.Limit, Remaining: max(r.Remaining, 0)}
		if r.Reset > 0 {
			l.ResetUnix = now.Add(time.Duration(r.Reset) * time.Second).Unix()
		}
		limits = append(limits, l)
	}
	return limits, nil
}

// lowLimit reports whether a limit of limits has less than a tenth left.
func lowLimit(limits []api.OPLimit) bool {
	for _, l := range limits {
		if l.Action != "write" && l.Remaining < l.Limit/10 {
			return true
		}
	}
	return false
}
