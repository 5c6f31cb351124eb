package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/audit"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/policy"
	"github.com/opxhq/opx/xdg"
)

// AuditCmd is `opx audit [--since 1h|7d] [--json] [--interactive]`.
type AuditCmd struct {
	Since       string `help:"How far back to look: a duration (90m, 1h) or days (7d)." default:"24h"`
	JSON        bool   `help:"Print the summary as JSON." xor:"mode"`
	Interactive bool   `short:"i" help:"Turn chosen denials into allow rules in policy.json." xor:"mode"`
	Questions   bool   `help:"List the questions asked about reads a policy rule asks for, and their answers, instead of the denials (with --json too)."`
}

// Run summarises the denials in the audit files: program, ref, count, last.
func (c *AuditCmd) Run(env *Env) error {
	d, err := parseSince(c.Since)
	if err != nil {
		return &client.Error{Message: err.Error()}
	}
	if c.Questions {
		if c.Interactive {
			return &client.Error{Message: "--questions lists; --interactive turns denials into rules: one at a time"}
		}
		return c.questions(env, time.Now().Add(-d))
	}
	denials, err := audit.Denials(env.Paths.DataDir, time.Now().Add(-d))
	if err != nil {
		return &client.Error{Message: fmt.Sprintf("read the audit log: %v", err), Err: err}
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
		what := Printable(d.Reference) + inAccount(d.Account)
		if d.Action != "" && d.Action != audit.ActionRead {
			what = "(session " + d.Action + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", i+1, Printable(orUnknown(d.Path)), what, d.Count, d.Last.Local().Format("2006-01-02 15:04:05"))
	}
	tw.Flush()
	if !c.Interactive {
		return nil
	}
	return c.interactive(env, denials)
}

// questions lists the questions asked since since and what became of each.
func (c *AuditCmd) questions(env *Env, since time.Time) error {
	answers, err := audit.Answers(env.Paths.DataDir, since)
	if err != nil {
		return &client.Error{Message: fmt.Sprintf("read the audit log: %v", err), Err: err}
	}
	if c.JSON {
		b, err := json.MarshalIndent(answers, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
		return err
	}
	if len(answers) == 0 {
		fmt.Fprintf(env.Stdout, "no questions in the last %s\n", c.Since)
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tQUESTION\tPROGRAM\tREFS\tSTEP\tANSWER")
	for _, a := range answers {
		what := Printable(strings.Join(a.Question.Refs, " ")) + inAccount(a.Question.Account)
		answer := a.Answer
		if a.Channel != "" {
			answer += " (" + a.Channel + ")"
		}
		if a.AnsweredBy != nil {
			answer += " by " + Printable(orUnknown(a.AnsweredBy.Path))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Time.Local().Format("2006-01-02 15:04:05"), orDash(a.Question.ID),
			Printable(orUnknown(a.Path)), what, a.Step, answer)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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

// errNoInput ends an interactive session at end of input: nothing is
// written.
var errNoInput = errors.New("end of input")

// prompter asks questions on the terminal and reads one line per answer.
type prompter struct {
	in  *bufio.Reader
	out io.Writer
}

// ask prints q and returns the answer, trimmed; errNoInput at end of input
// (Ctrl-D) with nothing typed.
func (p *prompter) ask(q string) (string, error) {
	fmt.Fprint(p.out, q)
	line, err := p.in.ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(p.out)
		return "", errNoInput
	}
	return strings.TrimSpace(line), nil
}

// yes asks a yes/no question whose default is no, until the answer is one.
func (p *prompter) yes(q string) (bool, error) {
	for {
		a, err := p.ask(q + " [y/N] ")
		if err != nil {
			return false, err
		}
		switch strings.ToLower(a) {
		case "y", "yes":
			return true, nil
		case "", "n", "no":
			return false, nil
		}
		fmt.Fprintln(p.out, "please answer y or n")
	}
}

// grant is one rule to add: a program, a ref pattern and, for another
// account than the default, the account.
type grant struct{ path, pattern, account string }

// interactive asks which denials to allow and at which scope, then, once
// the user confirms, writes the rules into policy.json atomically; the
// daemon applies them on the next read. End of input at any question ends
// the session without writing anything; an answer that is not one of the
// choices asks again.
func (c *AuditCmd) interactive(env *Env, denials []audit.Denial) error {
	p := &prompter{in: bufio.NewReader(env.Stdin), out: env.Stdout}
	grants, err := c.chooseGrants(p, env, denials)
	if errors.Is(err, errNoInput) {
		fmt.Fprintln(env.Stdout, "no change made")
		return nil
	}
	if err != nil {
		return err
	}
	if len(grants) == 0 {
		fmt.Fprintln(env.Stdout, "no change made")
		return nil
	}
	fmt.Fprintf(env.Stdout, "New allow rules in %s:\n", Printable(env.Paths.PolicyFile))
	for _, g := range grants {
		fmt.Fprintf(env.Stdout, "  %s may read %s%s\n", Printable(g.path), Printable(g.pattern), inAccount(g.account))
	}
	ok, err := p.yes("Write them?")
	if errors.Is(err, errNoInput) || (err == nil && !ok) {
		fmt.Fprintln(env.Stdout, "no change made")
		return nil
	}
	if err != nil {
		return err
	}
	if err := writeGrants(env.Paths, grants); err != nil {
		return err
	}
	for _, g := range grants {
		fmt.Fprintf(env.Stdout, "allowed %s to read %s%s\n", Printable(g.path), Printable(g.pattern), inAccount(g.account))
	}
	fmt.Fprintf(env.Stdout, "%s updated; the daemon applies it on the next read\n", Printable(env.Paths.PolicyFile))
	return nil
}

// chooseGrants asks which denials to allow, and how.
func (c *AuditCmd) chooseGrants(p *prompter, env *Env, denials []audit.Denial) ([]grant, error) {
	var chosen []audit.Denial
	for chosen == nil {
		answer, err := p.ask("Allow which denials? (numbers, e.g. 1 3; empty to stop) ")
		if err != nil {
			return nil, err
		}
		if answer == "" {
			return nil, nil
		}
		picked, why := pickDenials(answer, denials)
		if why != "" {
			fmt.Fprintln(env.Stdout, why)
			continue
		}
		chosen = picked
	}
	home := os.Getenv("HOME")
	var grants []grant
	for _, d := range chosen {
		path := ruleName(d.Path)
		if path != d.Path {
			fmt.Fprintf(env.Stdout, "%s runs as %s; the rule names %s, which keeps matching after upgrades\n",
				Printable(path), Printable(d.Path), Printable(path))
		}
		if why, ok := weakRule(d.Path, home); ok {
			fmt.Fprintf(env.Stdout, "warning: %s\n", Printable(why))
			ok, err := p.yes(fmt.Sprintf("Allow %s anyway?", Printable(path)))
			if err != nil {
				return nil, err
			}
			if !ok {
				fmt.Fprintf(env.Stdout, "skipped %s\n", Printable(path))
				continue
			}
		}
		pattern, err := askScope(p, path, d.Reference)
		if err != nil {
			return nil, err
		}
		grants = append(grants, grant{path: path, pattern: pattern, account: grantAccount(d, env.Paths)})
	}
	return grants, nil
}

// pickDenials parses a list of denial numbers; why says what is wrong with
// it, if anything.
func pickDenials(answer string, denials []audit.Denial) ([]audit.Denial, string) {
	var out []audit.Denial
	for _, f := range strings.Fields(strings.ReplaceAll(answer, ",", " ")) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > len(denials) {
			return nil, fmt.Sprintf("%s is not one of the numbers listed (1 to %d)", Printable(f), len(denials))
		}
		d := denials[n-1]
		switch {
		case d.Path == "":
			return nil, fmt.Sprintf("denial %d has no program path to allow", n)
		case d.Action != "" && d.Action != audit.ActionRead:
			return nil, fmt.Sprintf("denial %d is a session %s: a program allowed any ref may do it, so allow it a ref instead", n, d.Action)
		}
		out = append(out, d)
	}
	return out, ""
}

// askScope asks how much of ref's neighbourhood path may read, until the
// answer is a pattern the policy can hold.
func askScope(p *prompter, path, ref string) (string, error) {
	vault := vaultPattern(ref)
	for {
		a, err := p.ask(fmt.Sprintf("Scope for %s reading %s: [e]xact ref, [v]ault (%s), [a]ll refs? ",
			Printable(path), Printable(ref), Printable(vault)))
		if err != nil {
			return "", err
		}
		var pattern string
		switch strings.ToLower(a) {
		case "e", "exact":
			pattern = ref
			if strings.Contains(ref, "*") {
				prefix, ok := strings.CutSuffix(ref, "*")
				if !ok || strings.Contains(prefix, "*") {
					fmt.Fprintf(p.out, "%s holds a '*' that a rule cannot hold as written; choose another scope\n", Printable(ref))
					continue
				}
				fmt.Fprintf(p.out, "%s ends in '*', which a rule reads as a pattern: every ref that starts with %s\n", Printable(ref), Printable(prefix))
				ok, err := p.yes("Allow it as that pattern?")
				if err != nil {
					return "", err
				}
				if !ok {
					continue
				}
			}
		case "v", "vault":
			pattern = vault
		case "a", "all":
			pattern = "*"
		default:
			fmt.Fprintln(p.out, "please answer e, v or a")
			continue
		}
		if !policy.ValidPattern(pattern) {
			fmt.Fprintf(p.out, "%s is not a pattern a rule can hold; choose another scope\n", Printable(pattern))
			continue
		}
		return pattern, nil
	}
}

// ruleName is the name a rule should use for the executable at exe: a link
// on PATH that resolves to it (/usr/bin/python3 for /usr/bin/python3.11),
// so that the rule survives upgrades; exe itself when there is none. Only a
// link that root owns, in a directory only root can write, is used: a rule
// through a link the user (or any of the user's programs) can re-point
// would move to whatever the link names next.
func ruleName(exe string) string {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if !filepath.IsAbs(dir) {
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.Type()&fs.ModeSymlink == 0 {
				continue
			}
			// Only a link named like the program: python3 for python3.11,
			// op for a Cellar's op, never rbash for bash.
			name, base := e.Name(), filepath.Base(exe)
			rest, ok := strings.CutPrefix(base, name)
			if !ok || (rest != "" && !strings.ContainsRune("0123456789.-", rune(rest[0]))) {
				continue
			}
			link := filepath.Join(dir, name)
			if link != exe && policy.ResolvePath(link, "") == exe && rootOwned(link) {
				return link
			}
		}
	}
	return exe
}

// writeGrants adds allow rules for grants to policy.json, checked as the
// daemon checks it, written whole by rename with mode 0600.
func writeGrants(paths xdg.Paths, grants []grant) error {
	pol, err := readPolicy(paths)
	if err != nil {
		return err
	}
	for _, g := range grants {
		addGrant(pol, g)
	}
	b, err := json.MarshalIndent(pol, "", "  ")
	if err != nil {
		return err
	}
	if _, err := policy.Parse(b); err != nil {
		return &client.Error{Message: fmt.Sprintf("the new policy would not be valid: %v", err)}
	}
	if err := xdg.EnsureDir(paths.ConfigDir); err != nil {
		return err
	}
	return xdg.WriteFileAtomic(paths.PolicyFile, append(b, '\n'), 0o600)
}

// readPolicy returns the current policy file's contents, or an empty policy
// that denies by default (a user who turns denials into rules wants the
// rest denied).
func readPolicy(p xdg.Paths) (*policy.Policy, error) {
	b, err := policy.ReadFile(p.PolicyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return &policy.Policy{DefaultDeny: true}, nil
	}
	if err != nil {
		return nil, &client.Error{Message: fmt.Sprintf("read policy: %v", err), Err: err, Hint: "fix the file first: the daemon refuses it too"}
	}
	pol, err := policy.Parse(b)
	if err != nil {
		return nil, &client.Error{Message: fmt.Sprintf("policy %s: %v", p.PolicyFile, err), Hint: "fix the file first"}
	}
	return pol, nil
}

// addGrant adds g's pattern to the rule for exactly g's path and account
// (and no server, identity or asking), or a new rule.
func addGrant(p *policy.Policy, g grant) {
	for i, r := range p.Allow {
		if r.Path == g.path && r.PathSHA256 == "" && r.ExeSHA256 == "" && r.PID == 0 && !r.RequireSigned &&
			strings.EqualFold(r.Account, g.account) && r.Server == nil && r.Identity == "" && !r.Ask {
			for _, existing := range r.Refs {
				if existing == g.pattern {
					return
				}
			}
			p.Allow[i].Refs = append(p.Allow[i].Refs, g.pattern)
			return
		}
	}
	p.Allow = append(p.Allow, policy.Rule{Path: g.path, Refs: []string{g.pattern}, Account: g.account})
}

// grantAccount is the account a rule allowing d must name: the one the
// denied read named, unless that is the default account (config.json's),
// which a rule without an account covers. Only op:// refs have accounts.
func grantAccount(d audit.Denial, p xdg.Paths) string {
	if d.Account == "" || !strings.HasPrefix(d.Reference, api.SchemeOP+"://") || strings.EqualFold(d.Account, configString(p, "account")) {
		return ""
	}
	return d.Account
}

// inAccount says which account a grant is for, "" for the default one.
func inAccount(account string) string {
	if account == "" {
		return ""
	}
	return " in account " + Printable(account)
}

// vaultPattern is the pattern for the whole vault (op://Vault/*) or mount
// (vault://secret/*) of ref.
func vaultPattern(ref string) string {
	r, err := api.ParseRef(ref)
	if err != nil {
		return ref
	}
	switch r.Scheme {
	case api.SchemeOP:
		return "op://" + r.Vault + "/*"
	default:
		first, _, _ := strings.Cut(r.Path, "/")
		return r.Scheme + "://" + first + "/*"
	}
}

// weakRule says why a rule for the program at path would allow more than
// it seems: a shell, interpreter or launcher, or opx itself (every program
// can run opx read).
func weakRule(path, home string) (string, bool) {
	if self, err := os.Executable(); err == nil && policy.ResolvePath(self, home) == policy.ResolvePath(path, home) {
		return path + " is opx itself: a rule for it lets every program read through opx read", true
	}
	return policy.Interpreter(path, home)
}
