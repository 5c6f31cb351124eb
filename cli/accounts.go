package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/audit"
	"github.com/opxhq/opx/policy"
	"github.com/opxhq/opx/xdg"
)

// accountRuleNotes names the rules that stop matching reads they used to
// allow now that rules know their 1Password account: a rule without an
// account covers the default account only (no account named, or
// config.json's). The evidence is the denials of the last week that name
// another account and that such a rule would allow in the default account,
// and the accounts the daemon has called op for (inUse, from its status).
func accountRuleNotes(p xdg.Paths, pol *policy.Policy, inUse []string) []string {
	if pol == nil {
		return nil
	}
	def := configString(p, "account")
	isDefault := func(a string) bool { return a == "" || def != "" && strings.EqualFold(a, def) }
	var notes []string
	denials, _ := audit.Denials(p.DataDir, time.Now().AddDate(0, 0, -7))
	seen := map[string]bool{}
	for _, d := range denials {
		if isDefault(d.Account) || !strings.HasPrefix(d.Reference, api.SchemeOP+"://") || d.Path == "" {
			continue
		}
		got := pol.Decide(policy.Requester{Path: d.Path}, policy.Read{Ref: d.Reference, DefaultAccount: def}, policy.Env{Home: os.Getenv("HOME")})
		if !got.Allow || got.Rule < 0 || pol.Allow[got.Rule].Account != "" {
			continue
		}
		key := fmt.Sprint(got.Rule, "|", d.Account)
		if seen[key] {
			continue
		}
		seen[key] = true
		notes = append(notes, fmt.Sprintf("allow[%d] names no account, so it covers the default account only: %s was refused %s in account %s (%d times since %s); add \"account\": %q (or \"*\") to a rule for it, or run: opx audit -i",
			got.Rule, Printable(d.Path), Printable(d.Reference), Printable(d.Account), d.Count, d.Last.Local().Format("2006-01-02 15:04"), d.Account))
	}
	var others []string
	for _, a := range inUse {
		if !isDefault(a) && !slices.Contains(others, a) {
			others = append(others, a)
		}
	}
	if noAccount := pol.NoAccount(); len(others) > 0 && len(noAccount) > 0 {
		idx := make([]string, len(noAccount))
		for i, n := range noAccount {
			idx[i] = fmt.Sprintf("allow[%d]", n)
		}
		notes = append(notes, fmt.Sprintf("%s %s no account, so %s the default account only, and the daemon has read accounts %s: name the account in a rule (\"account\": NAME, or \"*\") for each that should read them",
			strings.Join(idx, ", "), plural(len(idx), "names", "name"), plural(len(idx), "it covers", "they cover"), Printable(strings.Join(others, ", "))))
	}
	return notes
}

// accountsOf is the accounts a daemon's status names: those it called op
// for and those locked.
func accountsOf(st *api.Status) []string {
	if st == nil {
		return nil
	}
	var out []string
	for _, u := range st.OPCalls {
		out = append(out, u.Account)
	}
	for _, l := range st.Session.LockedAccounts {
		out = append(out, l.Account)
	}
	return out
}
