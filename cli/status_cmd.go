package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
)

// StatusCmd is `opx status`.
type StatusCmd struct {
	JSON bool `help:"Print the daemon's status as JSON."`
}

// Run prints the daemon's status. It does not start a daemon: when none is
// running it says so and exits 3.
func (c *StatusCmd) Run(env *Env) error {
	st, err := env.NoStart.Status(context.Background())
	if err != nil {
		if isNotRunning(err) {
			if c.JSON {
				fmt.Fprintf(env.Stdout, "{\"running\":false,\"socket_path\":%q}\n", env.Paths.SocketPath)
			} else {
				fmt.Fprintf(env.Stdout, "opx daemon: not running (socket %s)\n", env.Paths.SocketPath)
			}
			return &ExitError{Code: 3}
		}
		return err
	}
	if c.JSON {
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
		return err
	}
	_, err = fmt.Fprint(env.Stdout, formatStatus(st))
	return err
}

func formatStatus(st *api.Status) string {
	var b strings.Builder
	if st.Limited {
		fmt.Fprintf(&b, "opx daemon %s: running, pid %d; session %s\n", st.Version, st.PID, st.Session.State)
		if st.Policy.State != "" {
			fmt.Fprintf(&b, "  policy    %s", st.Policy.State)
			if st.Policy.Reason != "" {
				fmt.Fprintf(&b, ": %s", Printable(st.Policy.Reason))
			}
			b.WriteString("\n")
		}
		b.WriteString("  the policy allows the program that ran opx status no ref, so the daemon tells it no more (opx policy check shows which program that is and why)\n")
		return b.String()
	}
	fmt.Fprintf(&b, "opx daemon %s: running, pid %d, up %s\n", st.Version, st.PID, sec(st.UptimeSeconds))
	fmt.Fprintf(&b, "  backend   %s; calls take at most %s, %d at once", st.Backend,
		time.Duration(st.Settings.BackendTimeoutSeconds*float64(time.Second)), st.Settings.MaxConcurrent)
	if st.Settings.LockOnAuthFailure {
		b.WriteString("; an auth failure locks")
	}
	b.WriteString("\n")
	if st.Backend == "opcli" || st.Backend == "multi" {
		switch op := st.Settings.OPFound; {
		case op != "" && st.Settings.OPVersion != "":
			fmt.Fprintf(&b, "  op        %s (version %s)\n", Printable(op), Printable(st.Settings.OPVersion))
		case op != "":
			fmt.Fprintf(&b, "  op        %s\n", Printable(op))
		default:
			fmt.Fprintf(&b, "  op        not found (%s)\n", Printable(cmp.Or(st.Settings.OPPath, "op on PATH")))
		}
	}
	if a := st.Settings.VaultAddress; a != "" {
		fmt.Fprintf(&b, "  vault     %s\n", Printable(a))
	}
	if a := st.Settings.BaoAddress; a != "" {
		fmt.Fprintf(&b, "  bao       %s\n", Printable(a))
	}
	fmt.Fprintf(&b, "  socket    %s\n", st.SocketPath)
	fmt.Fprintf(&b, "  cache     %d of %d values, each kept %s\n", st.CacheSize, st.CacheCapacity, sec(st.TTLSeconds))
	fmt.Fprintf(&b, "  reads     %s, %s (%d joined a read in flight), %s, %d in flight\n",
		count(st.Hits, "hit", "hits"), count(st.Misses, "miss", "misses"), st.Coalesced, count(st.BackendCalls, "backend call", "backend calls"), st.InFlight)
	if c := st.Connections; c.Refused > 0 || c.BodiesRefused > 0 {
		fmt.Fprintf(&b, "  conns     %d open; refused since the start: %d connections (past %d from one process) and %d requests (past %d MiB of bodies pending from one process); the daemon's log names the process\n",
			c.Open, c.Refused, api.MaxConnsPerProcess, c.BodiesRefused, api.MaxBodyBytesPerProcess>>20)
	}
	for _, l := range st.Leases {
		renew := "not renewable"
		if l.Renewable {
			renew = "renewed while read"
		}
		fmt.Fprintf(&b, "  lease     %s://%s: %s, ends %s, %s\n", l.Backend, Printable(l.Path), Printable(l.LeaseID),
			time.Unix(l.ExpiresUnix, 0).Format(time.TimeOnly), renew)
	}
	for _, u := range st.OPCalls {
		name := "default account"
		if u.Account != "" {
			name = "account " + u.Account
		}
		switch u.IdentityKind {
		case api.IdentityServiceAccount:
			name += " as service account " + u.Identity
		case api.IdentityConnect:
			name += " as Connect server " + u.Identity
		}
		fmt.Fprintf(&b, "  op calls  %s: %d in the last hour, %d in the last day", Printable(name), u.LastHour, u.LastDay)
		if st.Settings.OPBudget != "" {
			fmt.Fprintf(&b, " (budget %s)", st.Settings.OPBudget)
		}
		if u.RateLimitedUntilUnix > 0 {
			fmt.Fprintf(&b, "; rate-limited by 1Password until %s", time.Unix(u.RateLimitedUntilUnix, 0).Format(time.TimeOnly))
		}
		b.WriteString("\n")
		if len(u.Limits) > 0 {
			fmt.Fprintf(&b, "            left: %s\n", api.DescribeOPLimits(u.Limits))
		}
	}
	if st.Refreshes > 0 {
		fmt.Fprintf(&b, "            %s fetched again ahead of expiry (--refresh-ahead)\n", count(st.Refreshes, "value", "values"))
	}
	if st.StaleServed > 0 {
		fmt.Fprintf(&b, "            %s served stale while the backend failed (--stale-if-error %s)\n",
			count(st.StaleServed, "value", "values"), time.Duration(st.Settings.StaleIfErrorSeconds*float64(time.Second)))
	}
	s := st.Session
	switch {
	case s.State == api.StateLocked:
		why := map[string]string{"manual": "by opx lock", "idle_timeout": "after the idle timeout", "auth_failure": "after a backend refused its sign-in",
			"screen_locked": "with the screen", "sleep": "as the machine went to sleep"}[s.LockReason]
		if why != "" {
			why = " " + why
		}
		fmt.Fprintf(&b, "  session   locked%s (run: opx unlock)\n", why)
	case !s.Enabled:
		fmt.Fprintf(&b, "  session   unlocked; idle lock off\n")
	default:
		fmt.Fprintf(&b, "  session   unlocked; locks after %s without a read (in %s)\n", sec(s.IdleTimeoutSeconds), sec(s.TimeUntilLockSeconds))
	}
	if s.Follows != "" {
		fmt.Fprintf(&b, "            locks with the user's session: follows %s\n", Printable(s.Follows))
	}
	for _, l := range s.LockedAccounts {
		name := "the default account"
		if l.Account != "" {
			name = "account " + l.Account
		}
		fmt.Fprintf(&b, "            %s locked: %s\n", Printable(name), Printable(api.ThenUnlock(l.Reason)))
	}
	if line := idleExitLine(st, time.Now()); line != "" {
		b.WriteString(line)
	}
	p := st.Policy
	switch {
	case p.State == "failed_closed":
		fmt.Fprintf(&b, "  policy    %s: FAILED CLOSED, every read is denied: %s\n", Printable(p.Path), Printable(p.Reason))
	case p.Loaded:
		def := p.Default
		if def == "" { // a daemon from before "default"
			def = "allow"
			if p.DefaultDeny {
				def = "deny"
			}
		}
		asks := ""
		if p.AskRules > 0 {
			asks = fmt.Sprintf(" (%d asking)", p.AskRules)
		}
		fmt.Fprintf(&b, "  policy    %s: %s%s, default %s (sha256 %.12s)\n", Printable(p.Path), count(p.Rules, "rule", "rules"), asks, def, p.Hash)
		if p.Reason != "" {
			fmt.Fprintf(&b, "            the file's new content is not in force: %s\n", Printable(p.Reason))
		}
	default:
		fmt.Fprintf(&b, "  policy    none (%s): every program of yours may read\n", Printable(p.Path))
	}
	if ask := st.Ask; ask.Channel != "" && (p.AskRules > 0 || p.Default == "ask" || ask.Pending > 0) {
		how := ask.Channel
		switch {
		case strings.HasPrefix(how, "askpass "):
			how = "through " + Printable(how)
		case how == "notification":
			how = "through a desktop notification"
		default:
			how = "with opx approve alone (no askpass; " + Printable(ask.ChannelNote) + ")"
		}
		fmt.Fprintf(&b, "  asking    %s, %s to answer", how, time.Duration(ask.TimeoutSeconds*float64(time.Second)))
		if ask.Pending > 0 {
			fmt.Fprintf(&b, "; %s waiting: opx approve", count(ask.Pending, "question", "questions"))
		}
		b.WriteString("\n")
		if ask.LastError != "" {
			fmt.Fprintf(&b, "            the last question could not be asked: %s\n", Printable(ask.LastError))
		}
	}
	a := st.Audit
	switch {
	case !a.Enabled:
		fmt.Fprintf(&b, "  audit     off\n")
	case a.Healthy:
		fmt.Fprintf(&b, "  audit     %s\n", Printable(a.Path))
	default:
		fmt.Fprintf(&b, "  audit     %s: NOT WRITABLE, reads are refused: %s\n", Printable(a.Path), Printable(a.Error))
	}
	fmt.Fprintf(&b, "  config    %s\n", Printable(st.Paths.Config))
	return b.String()
}

// idleExitLine is status's line about --exit-when-idle, "" when it is
// off: when the daemon stops if no client comes once this status's own
// connection closes (at now), or what keeps it busy.
func idleExitLine(st *api.Status, now time.Time) string {
	if st.Settings.ExitWhenIdleSeconds <= 0 {
		return ""
	}
	after := time.Duration(st.Settings.ExitWhenIdleSeconds * float64(time.Second))
	line := fmt.Sprintf("  idle exit after %s with no connection and no backend call", after)
	if others := st.Connections.Open - 1; others > 0 || st.InFlight > 0 {
		return line + fmt.Sprintf("; busy now: %s open besides this one, %s in flight\n",
			count(max(others, 0), "connection", "connections"), count(st.InFlight, "read", "reads"))
	}
	return line + fmt.Sprintf(": at %s if no client comes\n", now.Add(after).Format(time.TimeOnly))
}

// sec is n seconds as a duration, for printing.
func sec(n int64) time.Duration { return time.Duration(n) * time.Second }

// count is "1 hit" or "2 hits".
func count[N int | int64 | uint64](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
