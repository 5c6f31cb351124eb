package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/client"
)

// ApproveCmd is `opx approve [ID]`: the questions a policy rule that asks
// has the daemon wait on, answered from another terminal.
type ApproveCmd struct {
	ID     string        `arg:"" optional:"" help:"The question to answer, as opx approve lists it; without it, list them (and on a terminal, answer each)."`
	Deny   bool          `help:"Refuse the read."`
	Always bool          `help:"Allow, and add an allow rule for this program and these refs to policy.json, so it is not asked again."`
	For    time.Duration `name:"for" help:"Allow, and let this program read these refs without asking for DURATION (at most 24h; opx lock ends it)." placeholder:"DURATION"`
}

// Run implements the command.
func (c *ApproveCmd) Run(env *Env) error {
	if c.Deny && (c.Always || c.For != 0) {
		return &client.Error{Message: "--deny goes alone: --always and --for allow"}
	}
	if c.For < 0 || c.For > 24*time.Hour {
		return &client.Error{Message: fmt.Sprintf("--for %v: want up to 24h", c.For)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pending, err := env.NoStart.Approvals(ctx)
	if err != nil {
		return err
	}
	if c.ID != "" {
		for _, q := range pending {
			if q.ID == c.ID {
				return c.answer(ctx, env, q, !c.Deny, c.Always, c.For)
			}
		}
		return &client.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("no question %s is waiting (answered, timed out, or never asked)", Printable(c.ID)),
			Hint: "opx approve lists the questions that are"}
	}
	if len(pending) == 0 {
		fmt.Fprintln(env.Stdout, "no question is waiting")
		return nil
	}
	for _, q := range pending {
		showQuestion(env, q)
	}
	if !env.interactive() {
		fmt.Fprintln(env.Stdout, "answer with: opx approve ID [--deny | --always | --for DURATION]")
		return nil
	}
	p := &prompter{in: bufio.NewReader(env.Stdin), out: env.Stdout}
	for _, q := range pending {
		a, err := p.ask(fmt.Sprintf("Allow %s? [y]es, [n]o, [a]lways (a rule in policy.json), [s]kip: ", q.ID))
		if errors.Is(err, errNoInput) {
			return nil
		}
		if err != nil {
			return err
		}
		switch strings.ToLower(a) {
		case "y", "yes":
			err = c.answer(ctx, env, q, true, false, 0)
		case "n", "no":
			err = c.answer(ctx, env, q, false, false, 0)
		case "a", "always":
			err = c.answer(ctx, env, q, true, true, 0)
		default:
			continue
		}
		if err != nil {
			fmt.Fprintf(env.Stderr, "opx: %s\n", Printable(err.Error()))
		}
	}
	return nil
}

// showQuestion prints q: its id, the program, the refs and where, every
// name escaped.
func showQuestion(env *Env, q api.Question) {
	fmt.Fprintf(env.Stdout, "%s  %s (pid %d", q.ID, Printable(q.Program), q.PID)
	if q.ClientPID != 0 {
		fmt.Fprintf(env.Stdout, ", through the opx client pid %d", q.ClientPID)
	}
	fmt.Fprintf(env.Stdout, ") wants to read, until %s:\n", time.Unix(q.DeadlineUnix, 0).Format(time.TimeOnly))
	for _, ref := range q.Refs {
		fmt.Fprintf(env.Stdout, "    %s\n", Printable(ref))
	}
	if q.Account != "" {
		fmt.Fprintf(env.Stdout, "    in 1Password account %s\n", Printable(q.Account))
	}
	if q.Server != "" {
		fmt.Fprintf(env.Stdout, "    from %s\n", Printable(q.Server))
	}
}

// answer answers q; with always, it writes the allow rule first, so that
// the next read of these refs by the program is not asked about.
func (c *ApproveCmd) answer(ctx context.Context, env *Env, q api.Question, allow, always bool, remember time.Duration) error {
	if always {
		grants := make([]grant, 0, len(q.Refs))
		for _, ref := range q.Refs {
			account := ""
			if strings.HasPrefix(ref, api.SchemeOP+"://") && !strings.EqualFold(q.Account, configString(env.Paths, "account")) {
				account = q.Account
			}
			grants = append(grants, grant{path: q.Program, pattern: ref, account: account})
		}
		if err := writeGrants(env.Paths, grants); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "allowed %s to read %s%s in %s\n", Printable(q.Program), Printable(strings.Join(q.Refs, " ")),
			inAccount(grants[0].account), Printable(env.Paths.PolicyFile))
	}
	resp, err := env.NoStart.Approve(ctx, api.ApproveRequest{ID: q.ID, Allow: allow, RememberSeconds: remember.Seconds()})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %s\n", q.ID, Printable(resp.Message))
	return nil
}
