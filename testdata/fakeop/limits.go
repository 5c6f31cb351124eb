package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// A service account's requests are limited as 1Password's "Service account
// rate limits" describes: reads and writes per token in a 60-minute window
// that begins with the token's first request, and reads and writes together
// per 1Password account in a 24-hour window. The defaults are a Teams
// account's (1,000 reads and 100 writes an hour, 5,000 a day).
const (
	defaultReadLimit  = 1000
	defaultWriteLimit = 100
	defaultDailyLimit = 5000
	hourWindow        = time.Hour
	dayWindow         = 24 * time.Hour
)

// requests counts one service account's requests in a file of its own in
// FAKEOP_STATE, "sa-<id>.requests", one line per request ("<unix nanos>
// r" or "w"). Every token of the fixture belongs to its default account,
// so the account's usage is every such file's. Appending a line is the only
// write, so concurrent op processes all count; two of them can both take
// the last request of a window, which the real servers would not allow.
type requests struct {
	id                 identity
	read, write, daily int
	now                func() time.Time
}

func newRequests(id identity) *requests {
	if id.kind != serviceAccount {
		return nil
	}
	return &requests{id: id,
		read:  envInt("FAKEOP_SA_READ_LIMIT", defaultReadLimit),
		write: envInt("FAKEOP_SA_WRITE_LIMIT", defaultWriteLimit),
		daily: envInt("FAKEOP_SA_DAILY_LIMIT", defaultDailyLimit),
		now:   time.Now}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

func (r *requests) file() string { return filepath.Join(stateDir(), "sa-"+r.id.id()+".requests") }

// takeReads makes n read requests one after another, as op does, and fails
// on the first that a limit refuses; the requests made before it count.
// A nil *requests (not a service account) has no limits.
func (r *requests) takeReads(n int) error {
	for i := 0; i < n; i++ {
		if err := r.take('r'); err != nil {
			return err
		}
	}
	return nil
}

func (r *requests) take(kind byte) error {
	if r == nil {
		return nil
	}
	now := r.now()
	limit := r.read
	if kind == 'w' {
		limit = r.write
	}
	if start, used := window(r.times(r.file(), kind), hourWindow, now); used >= limit {
		return tooMany("service account", start.Add(hourWindow).Sub(now))
	}
	if start, used := window(r.accountTimes(), dayWindow, now); used >= r.daily {
		return tooMany("1Password account", start.Add(dayWindow).Sub(now))
	}
	f, err := os.OpenFile(r.file(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fail("could not record request: %s", err)
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%d %c\n", now.UnixNano(), kind)
	return err
}

// tooMany is 1Password's answer to a spent limit, in the form opx reads
// ("Please retry in 58 minutes"); who is "service account" for the hourly
// limits, "1Password account" for the daily one.
func tooMany(who string, wait time.Duration) error {
	return fail("(429) Too Many Requests: You've reached the maximum number of this type of requests this %s is allowed to make. Please retry in %s or try other requests.", who, waitText(wait))
}

// waitText is a wait as op words it: "59 minutes", "23 hours and 59 minutes".
func waitText(d time.Duration) string {
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0 && m > 0:
		return plural(h, "hour") + " and " + plural(m, "minute")
	case h > 0:
		return plural(h, "hour")
	case m > 0:
		return plural(m, "minute")
	}
	return plural(max(s, 1), "second")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// times reads the requests of one kind (0: all) in file, oldest first.
func (r *requests) times(file string, kind byte) []time.Time {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []time.Time
	for _, line := range strings.Split(string(b), "\n") {
		ns, k, ok := strings.Cut(line, " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil || kind != 0 && k != string(kind) {
			continue
		}
		out = append(out, time.Unix(0, n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

func (r *requests) accountTimes() []time.Time {
	files, _ := filepath.Glob(filepath.Join(stateDir(), "sa-*.requests"))
	var all []time.Time
	for _, f := range files {
		all = append(all, r.times(f, 0)...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Before(all[j]) })
	return all
}

// window finds the window that now falls in: a window begins with a request
// and lasts period; the first request after it ends begins the next. It
// returns the window's start and its requests, or zero when none is open.
func window(times []time.Time, period time.Duration, now time.Time) (time.Time, int) {
	var start time.Time
	used := 0
	for _, t := range times {
		if start.IsZero() || !t.Before(start.Add(period)) {
			start, used = t, 0
		}
		used++
	}
	if start.IsZero() || !now.Before(start.Add(period)) {
		return time.Time{}, 0
	}
	return start, used
}

// rateLimit is op service-account ratelimit: one row per limit (the
// token's writes, its reads, the account's reads and writes), as a table
// (TYPE ACTION LIMIT USED REMAINING RESET, the reset as "59 minutes from
// now" or N/A) or with --format json as a list of objects whose reset is
// in seconds (0 when no window is open). Asking costs no request.
func (r *requests) rateLimit(format string, stdout io.Writer) error {
	type row struct {
		Type      string `json:"type"`
		Action    string `json:"action"`
		Limit     int    `json:"limit"`
		Used      int    `json:"used"`
		Remaining int    `json:"remaining"`
		Reset     int64  `json:"reset"`
		resetText string
	}
	now := r.now()
	mk := func(typ, action string, limit int, times []time.Time, period time.Duration) row {
		start, used := window(times, period, now)
		rw := row{Type: typ, Action: action, Limit: limit, Used: used, Remaining: max(limit-used, 0), resetText: "N/A"}
		if !start.IsZero() {
			left := start.Add(period).Sub(now)
			rw.Reset, rw.resetText = int64(left/time.Second), fromNow(left)
		}
		return rw
	}
	rows := []row{
		mk("token", "write", r.write, r.times(r.file(), 'w'), hourWindow),
		mk("token", "read", r.read, r.times(r.file(), 'r'), hourWindow),
		mk("account", "read_write", r.daily, r.accountTimes(), dayWindow),
	}
	if format == "json" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		_, err := fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 4, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tACTION\tLIMIT\tUSED\tREMAINING\tRESET")
	for _, rw := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", rw.Type, rw.Action, rw.Limit, rw.Used, rw.Remaining, rw.resetText)
	}
	return tw.Flush()
}

// fromNow words a reset as op's table does: "59 minutes from now", "23
// hours from now" (whole units, rounded down).
func fromNow(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return plural(int(d/time.Hour), "hour") + " from now"
	case d >= time.Minute:
		return plural(int(d/time.Minute), "minute") + " from now"
	}
	return plural(max(int(d/time.Second), 1), "second") + " from now"
}

// readCost is what op read costs a service account, per 1Password's table
// of commands that make more than one request: 3 reads, or 1 when the
// reference names its vault and item by ID. A reference op cannot parse
// fails before any request.
func readCost(a *account, ref string) int {
	rest, ok := strings.CutPrefix(ref, "op://")
	if !ok {
		return 0
	}
	parts := strings.Split(strings.SplitN(rest, "?", 2)[0], "/")
	if len(parts) < 3 || len(parts) > 4 {
		return 0
	}
	for _, v := range a.Vaults {
		if v.ID == parts[0] {
			for _, it := range v.Items {
				if it.ID == parts[1] {
					return 1
				}
			}
		}
	}
	return 3
}

// itemGetCost is what op item get costs: 3 reads, or 1 when the item and
// the --vault are both given by ID.
func itemGetCost(a *account, name, vaultName string) int {
	for _, v := range a.Vaults {
		if v.ID == vaultName {
			for _, it := range v.Items {
				if it.ID == name {
					return 1
				}
			}
		}
	}
	return 3
}
