package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/self"
)

// Diagnoser is implemented by backends that can say, for opx doctor, what
// works and what does not: their program or server reachable, each account
// signed in. Every check is a real call; none reads a secret.
type Diagnoser interface {
	Diagnose(ctx context.Context, accounts []string) []api.Check
}

// Diagnose runs b's checks for accounts ("" for the default one); a backend
// without its own is checked with Validate.
func Diagnose(ctx context.Context, b Backend, accounts []string) []api.Check {
	if d, ok := b.(Diagnoser); ok {
		return d.Diagnose(ctx, accounts)
	}
	c := api.Check{Name: b.Name(), OK: true, Detail: "ready"}
	if err := b.Validate(ctx, accounts); err != nil {
		c.OK, c.Detail = false, errMessage(err)
	}
	return []api.Check{c}
}

// checkTimeout bounds each call a check makes (an op process, an HTTP
// request), so that one that hangs does not starve the others.
const checkTimeout = 15 * time.Second

// maxClockSkew is how far a server's clock may be from this machine's
// before doctor says so: tokens and one-time passwords depend on it.
const maxClockSkew = 30 * time.Second

func errMessage(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

func accountLabel(account string) string {
	if account == "" {
		return "default account"
	}
	return "account " + account
}

// Diagnose implements Diagnoser.
func (f *Fake) Diagnose(context.Context, []string) []api.Check {
	return []api.Check{{Name: "backend", OK: true, Detail: "fake: deterministic values for tests, no secrets"}}
}

// Diagnose implements Diagnoser: op found and its version, then op whoami
// for each account.
func (o *OPCLI) Diagnose(ctx context.Context, accounts []string) []api.Check {
	path, err := self.LookPath(o.path)
	if err != nil {
		return []api.Check{{Name: "op", Detail: fmt.Sprintf("the 1Password CLI (%s) was not found on the daemon's PATH", o.path),
			Fix: "install the 1Password CLI, or give the daemon --op-path PATH (then: opx restart)"}}
	}
	vctx, cancel := context.WithTimeout(ctx, checkTimeout)
	out, err := o.run(vctx, nil, "", "--version")
	cancel()
	if err != nil {
		return []api.Check{{Name: "op", Detail: fmt.Sprintf("%s --version failed: %s", path, errMessage(err)),
			Fix: "reinstall the 1Password CLI, or give the daemon --op-path PATH (then: opx restart)"}}
	}
	checks := []api.Check{{Name: "op", OK: true, Detail: "op " + strings.TrimSpace(string(out)) + " at " + path}}
	if o.defaultID.Kind == api.IdentityConnect {
		return append(checks, api.Check{Name: "1Password " + o.defaultID.Label(), OK: true, Warn: true,
			Detail: "not checked: op has no whoami for a Connect server, and a check reads none of your secrets; reads say whether the token works"})
	}
	if len(accounts) == 0 {
		accounts = []string{""}
	}
	for _, a := range accounts {
		c := api.Check{Name: "1Password " + accountLabel(a)}
		wctx, cancel := context.WithTimeout(ctx, checkTimeout)
		out, err := o.run(wctx, nil, a, "whoami", "--format=json")
		cancel()
		if err != nil {
			login := "opx login 1password"
			if a != "" {
				login += " --account " + a
			}
			c.Detail, c.Fix = errMessage(err), "sign in with: "+login
			checks = append(checks, c)
			continue
		}
		var who struct {
			Email string `json:"email"`
			URL   string `json:"url"`
		}
		c.OK, c.Detail = true, "signed in"
		if json.Unmarshal(out, &who) == nil && who.Email != "" {
			c.Detail = "signed in as " + who.Email + " (" + who.URL + ")"
		}
		checks = append(checks, c)
	}
	return append(checks, o.saChecks()...)
}

// saChecks is a check per service account opx has read as: what is left
// of its limits, as op last said and opx counted since.
func (o *OPCLI) saChecks() []api.Check {
	o.sa.mu.Lock()
	fps := make([]string, 0, len(o.sa.tokens))
	for fp := range o.sa.tokens {
		fps = append(fps, fp)
	}
	o.sa.mu.Unlock()
	sort.Strings(fps)
	var checks []api.Check
	for _, fp := range fps {
		limits := o.sa.limits(fp)
		c := api.Check{Name: "1Password service account " + ShortFingerprint(fp), OK: true}
		switch {
		case len(limits) == 0:
			c.Warn, c.Detail = true, "op service-account ratelimit has not answered: opx counts nothing against the token's limits"
			c.Fix = "update the 1Password CLI: opx learns the limits from op service-account ratelimit"
		default:
			c.Detail = "left: " + api.DescribeOPLimits(limits)
			if lowLimit(limits) {
				c.Warn = true
				c.Fix = "fewer reads per job (a longer --ttl shares values across steps), or another token for some jobs"
			}
		}
		checks = append(checks, c)
	}
	return checks
}

// Diagnose implements Diagnoser: the server reachable (sys/health), its
// clock against this machine's, and the token accepted (a token lookup).
// A login whose credentials are refs (read from the other backends) is not
// made for a check: the token is looked up only once a read has logged in.
func (v *Vault) Diagnose(ctx context.Context, _ []string) []api.Check {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	server := api.Check{Name: v.kind + " server"}
	cfg, err := api.LoadVaultConfig(v.kind, v.configFile)
	if err != nil {
		server.Detail, server.Fix = err.Error(), "fix config.json"
		return []api.Check{server}
	}
	if cfg.Address == "" {
		server.Detail = "no address is configured"
		server.Fix = fmt.Sprintf("run: opx login %s --address URL, or set %s_ADDR", v.kind, api.EnvPrefix(v.kind))
		return []api.Check{server}
	}
	client, err := NewVaultClient(cfg)
	if err != nil {
		server.Detail, server.Fix = fmt.Sprintf("%s client: %v", v.kind, err), "fix the TLS settings in config.json"
		return []api.Check{server}
	}
	h, err := client.Sys().HealthWithContext(ctx)
	if err != nil {
		server.Detail = fmt.Sprintf("cannot reach %s: %s", cfg.Address, errMessage(transportError(v.kind, err)))
		server.Fix = fmt.Sprintf("start the server, or point opx at it: opx login %s --address URL", v.kind)
		return []api.Check{server}
	}
	switch {
	case !h.Initialized:
		server.Detail, server.Fix = cfg.Address+" is not initialized", "initialize the server"
	case h.Sealed:
		server.Detail, server.Fix = cfg.Address+" is sealed", "unseal the server"
	default:
		server.OK = true
		server.Detail = fmt.Sprintf("%s answers: version %s, unsealed", cfg.Address, h.Version)
	}
	checks := []api.Check{server}
	if h.ServerTimeUTC > 0 {
		skew := time.Since(time.Unix(h.ServerTimeUTC, 0)).Round(time.Second)
		c := api.Check{Name: v.kind + " clock", OK: skew.Abs() <= maxClockSkew}
		switch {
		case skew > 0:
			c.Detail = fmt.Sprintf("this machine's clock is %s ahead of the server's", skew)
		case skew < 0:
			c.Detail = fmt.Sprintf("this machine's clock is %s behind the server's", -skew)
		default:
			c.Detail = "this machine's clock agrees with the server's"
		}
		if !c.OK {
			c.Fix = "set the clock right (NTP): token lifetimes and one-time passwords depend on it"
		}
		checks = append(checks, c)
	}
	token := api.Check{Name: v.kind + " token", OK: true, Detail: "accepted (token lookup)"}
	if cfg.Method != "token" || cfg.TokenRef != "" {
		if !v.loggedIn() {
			token.Warn, token.Detail = true, fmt.Sprintf("not logged in yet: the first read logs in (method %s, credentials from refs)", cfg.Method)
			return append(checks, token)
		}
	}
	if err := v.Validate(ctx, nil); err != nil {
		token.OK, token.Detail, token.Fix = false, errMessage(err), "sign in with: opx login "+v.kind
	}
	return append(checks, token)
}

// Diagnose implements Diagnoser: the 1Password CLI when op:// refs were
// read, op is installed or nothing else is configured, and Vault and
// OpenBao when they are configured or were read.
func (m *Multi) Diagnose(ctx context.Context, accounts []string) []api.Check {
	var checks []api.Check
	vault := m.usedVault.Load() || m.vault.Configured()
	bao := m.usedBao.Load() || m.bao.Configured()
	named := slices.ContainsFunc(accounts, func(a string) bool { return a != "" })
	switch _, opErr := self.LookPath(m.op.path); {
	case m.usedOP.Load() || named || !vault && !bao:
		checks = append(checks, m.op.Diagnose(ctx, accounts)...)
	case opErr == nil:
		// Installed but not used yet: worth knowing, not a failure.
		for _, c := range m.op.Diagnose(ctx, accounts) {
			if !c.OK {
				c.OK, c.Warn, c.Detail = true, true, "not used yet; "+c.Detail
			}
			checks = append(checks, c)
		}
	}
	if vault {
		checks = append(checks, m.vault.Diagnose(ctx, nil)...)
	}
	if bao {
		checks = append(checks, m.bao.Diagnose(ctx, nil)...)
	}
	return checks
}
