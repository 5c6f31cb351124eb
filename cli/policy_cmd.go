package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/policy"
	"github.com/opxhq/opx/xdg"
)

// PolicyCmd is `opx policy`.
type PolicyCmd struct {
	Check PolicyCheckCmd `cmd:"" help:"Tell whether a program may read refs under policy.json, and which rule decides."`
}

// PolicyCheckCmd is `opx policy check [--path EXE] [--pid N] REF...`.
type PolicyCheckCmd struct {
	Path string   `help:"The program's executable; links are followed as the daemon follows them (default: the program that runs this opx, as the daemon would judge it)." placeholder:"EXE"`
	PID  int      `help:"The program's pid, for pid rules." placeholder:"N"`
	Refs []string `arg:"" name:"ref" help:"Refs to check."`
}

// Run evaluates the policy file as the daemon does (the same functions:
// links in paths resolved, content hashes of executables) and prints one
// line per ref; it exits 1 when any ref is denied. Rules that name a shell
// or an interpreter are flagged.
func (c *PolicyCheckCmd) Run(g *Globals, env *Env) error {
	store, err := policy.Load(env.Paths.PolicyFile, nil)
	if err != nil {
		return policyLoadError(err)
	}
	penv := policy.Env{Home: os.Getenv("HOME"), Signed: policy.SignedCheck()}
	req := policy.Requester{PID: c.PID}
	if c.Path != "" {
		req.Path = policy.ResolvePath(c.Path, penv.Home)
	} else {
		ppid := os.Getppid()
		proc, err := policy.ReadProcess(ppid)
		path := proc.Path
		if err != nil {
			return &client.Error{Message: fmt.Sprintf("find the program that runs opx: %v", err), Hint: "pass --path EXE"}
		}
		req.Path = path
		if req.PID == 0 {
			req.PID = ppid
		}
	}
	snap := store.Current()
	switch snap.State {
	case policy.StateNone:
		fmt.Fprintf(env.Stdout, "no policy file at %s: every program of yours may read every ref\n", Printable(store.Path()))
		return nil
	case policy.StateFailedClosed:
		fmt.Fprintf(env.Stdout, "the policy file fails closed: %s\n", Printable(snap.Reason))
	}
	if snap.State == policy.StateLoaded && snap.Policy.UsesExeSHA256() {
		if sum, err := fileSHA256(req.Path); err == nil {
			req.ExeSHA256 = sum
		} else {
			fmt.Fprintf(env.Stderr, "opx: warning: cannot hash %s for exe_sha256 rules: %v\n", Printable(req.Path), err)
		}
	}
	shown := Printable(req.Path)
	if c.Path != "" && req.Path != c.Path {
		shown = Printable(c.Path) + " (" + Printable(req.Path) + ")"
	}
	denied := false
	for _, ref := range c.Refs {
		d := snap.Decide(req, readOf(env.Paths, g.Account, ref), penv)
		verdict := "ALLOW"
		switch {
		case d.Ask:
			verdict = "ASK"
		case !d.Allow:
			verdict, denied = "DENY", true
		}
		detail := ""
		if d.Rule >= 0 {
			detail = " [" + describeRule(snap.Policy.Allow[d.Rule]) + "]"
		}
		fmt.Fprintf(env.Stdout, "%s %s for %s: %s%s\n", verdict, Printable(ref), shown, Printable(d.Reason), detail)
	}
	if snap.State == policy.StateLoaded {
		for i, r := range snap.Policy.Allow {
			if r.Path == "" {
				continue
			}
			if why, ok := weakRule(r.Path, penv.Home); ok {
				fmt.Fprintf(env.Stdout, "warning: allow[%d] names %s: %s\n", i, Printable(r.Path), why)
			}
		}
		var inUse []string
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if st, err := env.NoStart.Status(ctx); err == nil {
			inUse = accountsOf(st)
		}
		cancel()
		for _, note := range accountRuleNotes(env.Paths, snap.Policy, inUse) {
			fmt.Fprintf(env.Stdout, "note: %s\n", note)
		}
	}
	if denied {
		return &ExitError{Code: 1}
	}
	return nil
}

// describeRule says whom a rule names and what it allows.
// policyLoadError says why the policy file cannot be used. A file that
// others could change (policy.FileError) fails closed in a running daemon;
// one that does not parse leaves it its last good policy.
func policyLoadError(err error) error {
	var fe *policy.FileError
	if !errors.As(err, &fe) {
		return &client.Error{Message: err.Error(), Hint: "fix the file; a running daemon keeps its last good policy meanwhile", Err: err}
	}
	hint := "a running daemon denies every read until it is fixed"
	if fe.Fix != "" {
		hint = fe.Fix + "; " + hint
	}
	return &client.Error{Message: strings.TrimSuffix(err.Error(), "; "+fe.Fix), Hint: hint, Err: err}
}

func describeRule(r policy.Rule) string {
	var who []string
	if r.Path != "" {
		who = append(who, "path "+Printable(r.Path))
	}
	if r.PathSHA256 != "" {
		who = append(who, "path_sha256 "+r.PathSHA256[:12]+"...")
	}
	if r.ExeSHA256 != "" {
		who = append(who, "exe_sha256 "+r.ExeSHA256[:12]+"...")
	}
	if r.PID != 0 {
		who = append(who, fmt.Sprintf("pid %d", r.PID))
	}
	where := ""
	if r.Account != "" {
		where += "; account " + Printable(r.Account)
	}
	if r.Server != nil {
		where += "; server " + Printable(r.Server.Address)
		if r.Server.Namespace != "" {
			where += " (namespace " + Printable(r.Server.Namespace) + ")"
		}
	}
	if r.Identity != "" {
		where += "; identity " + Printable(r.Identity)
	}
	if r.Ask {
		where += "; asks"
	}
	return strings.Join(who, ", ") + "; refs " + Printable(strings.Join(r.Refs, " ")) + where
}

// fileSHA256 is the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readOf is ref as the daemon's policy would judge it for a request that
// names account (the --account this command was given, or config.json's
// default), read from the server config.json names for its scheme.
func readOf(p xdg.Paths, account, ref string) policy.Read {
	q := policy.Read{Ref: ref, Account: account, DefaultAccount: configString(p, "account")}
	scheme, _, _ := strings.Cut(ref, "://")
	if scheme == api.SchemeVault || scheme == api.SchemeBao {
		if c, err := api.LoadVaultConfig(scheme, p.ConfigFile); err == nil && c.Address != "" {
			q.Server = &api.Server{Address: c.Address, Namespace: c.Namespace}
		}
	}
	return q
}
