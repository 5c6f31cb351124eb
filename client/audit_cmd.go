package client

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opxhq/opx/audit"
	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/policy"
	"github.com/opxhq/opx/xdg"
)

// AuditCmd is `opx audit [--since 1h|7d] [--json] [--interactive]`.
type AuditCmd struct {
	Since       string `help:"How far back to look: a duration (90m, 1h) or days (7d)." default:"24h"`
	JSON        bool   `help:"Print the summary as JSON." xor:"mode"`
	Interactive bool   `short:"i" help:"Turn chosen denials into allow rules in policy.json." xor:"mode"`
}

// Run summarises the denials in the audit files: program, ref, count, last.
func (c *AuditCmd) Run(env *Env) error {
	d, err := parseSince(c.Since)
	if err != nil {
		return &Error{Message: err.Error()}
	}
	denials, err := audit.Denials(env.Paths.DataDir, time.Now().Add(-d))
	if err != nil {
		return &Error{Message: fmt.Sprintf("read the audit log: %v", err), Err: err}
	}
	if c.JSON {
		b, err := json.MarshalIndent(denials, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
		return err
	}
	if len(denials) == 0 {
		files := audit.Files(env.Paths.DataDir, time.Now().Add(-d))
		if len(files) == 0 {
			fmt.Fprintf(env.Stdout, "no audit log in %s; start the daemon with --enable-audit-log\n", env.Paths.DataDir)
		} else {
			fmt.Fprintf(env.Stdout, "no denials in the last %s\n", c.Since)
		}
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tPROGRAM\tREF\tDENIED\tLAST")
	for i, d := range denials {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", i+1, orUnknown(d.Path), d.Reference, d.Count, d.Last.Local().Format("2006-01-02 15:04:05"))
	}
	tw.Flush()
	if !c.Interactive {
		return nil
	}
	return c.interactive(env, denials)
}

func orUnknown(p string) string {
	if p == "" {
		return "(unknown)"
	}
	return p
}

// parseSince takes "7d" or a Go duration.
func parseSince(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("--since %q: want a duration such as 1h or a number of days such as 7d", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--since %q: want a duration such as 1h or a number of days such as 7d", s)
	}
	return d, nil
}

// interactive asks which denials to allow and at which scope, then writes
// the rules into policy.json atomically; the daemon applies them on the next
// read.
func (c *AuditCmd) interactive(env *Env, denials []audit.Denial) error {
	in := bufio.NewReader(env.Stdin)
	ask := func(q string) string {
		fmt.Fprint(env.Stdout, q)
		line, _ := in.ReadString('\n')
		return strings.TrimSpace(line)
	}
	answer := ask("Allow which denials? (numbers, e.g. 1 3; empty to stop) ")
	if answer == "" {
		return nil
	}
	type grant struct{ path, pattern string }
	var grants []grant
	for _, f := range strings.Fields(strings.ReplaceAll(answer, ",", " ")) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > len(denials) {
			return &Error{Message: fmt.Sprintf("%q is not one of the numbers listed", f)}
		}
		d := denials[n-1]
		if d.Path == "" {
			return &Error{Message: fmt.Sprintf("denial %d has no program path to allow", n)}
		}
		scope := strings.ToLower(ask(fmt.Sprintf("Scope for %s reading %s: [e]xact ref, [v]ault (%s), [a]ll refs? ", d.Path, d.Reference, vaultPattern(d.Reference))))
		switch scope {
		case "e", "exact", "":
			grants = append(grants, grant{d.Path, d.Reference})
		case "v", "vault":
			grants = append(grants, grant{d.Path, vaultPattern(d.Reference)})
		case "a", "all":
			grants = append(grants, grant{d.Path, "*"})
		default:
			return &Error{Message: fmt.Sprintf("unknown scope %q", scope)}
		}
	}
	pol, err := readPolicy(env.Paths)
	if err != nil {
		return err
	}
	for _, g := range grants {
		addGrant(pol, g.path, g.pattern)
	}
	b, err := json.MarshalIndent(pol, "", "  ")
	if err != nil {
		return err
	}
	if _, err := policy.Parse(b); err != nil {
		return &Error{Message: fmt.Sprintf("the new policy would not be valid: %v", err)}
	}
	if err := xdg.EnsureDir(env.Paths.ConfigDir); err != nil {
		return err
	}
	if err := xdg.WriteFileAtomic(env.Paths.PolicyFile, append(b, '\n'), 0o600); err != nil {
		return err
	}
	for _, g := range grants {
		fmt.Fprintf(env.Stdout, "allowed %s to read %s\n", g.path, g.pattern)
	}
	fmt.Fprintf(env.Stdout, "%s updated; the daemon applies it on the next read\n", env.Paths.PolicyFile)
	return nil
}

// readPolicy returns the current policy file's contents, or an empty policy
// that denies by default (a user who turns denials into rules wants the
// rest denied).
func readPolicy(p xdg.Paths) (*policy.Policy, error) {
	b, err := os.ReadFile(p.PolicyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return &policy.Policy{DefaultDeny: true}, nil
	}
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("read policy: %v", err), Err: err}
	}
	pol, err := policy.Parse(b)
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("policy %s: %v", p.PolicyFile, err), Hint: "fix the file first"}
	}
	return pol, nil
}

// addGrant adds pattern to the rule for exactly path, or a new rule.
func addGrant(p *policy.Policy, path, pattern string) {
	for i, r := range p.Allow {
		if r.Path == path && r.PathSHA256 == "" && r.PID == 0 && !r.RequireSigned {
			for _, existing := range r.Refs {
				if existing == pattern {
					return
				}
			}
			p.Allow[i].Refs = append(p.Allow[i].Refs, pattern)
			return
		}
	}
	p.Allow = append(p.Allow, policy.Rule{Path: path, Refs: []string{pattern}})
}

// vaultPattern is the pattern for the whole vault (op://Vault/*) or mount
// (vault://secret/*) of ref.
func vaultPattern(ref string) string {
	r, err := backend.ParseRef(ref)
	if err != nil {
		return ref
	}
	switch r.Scheme {
	case backend.SchemeOP:
		return "op://" + r.Vault + "/*"
	default:
		first, _, _ := strings.Cut(r.Path, "/")
		return r.Scheme + "://" + first + "/*"
	}
}
