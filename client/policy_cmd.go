package client

import (
	"fmt"
	"os"
	"strings"

	"github.com/opxhq/opx/daemon"
	"github.com/opxhq/opx/policy"
)

// PolicyCmd is `opx policy`.
type PolicyCmd struct {
	Check PolicyCheckCmd `cmd:"" help:"Tell whether a program may read refs under policy.json, and which rule decides."`
}

// PolicyCheckCmd is `opx policy check [--path EXE] [--pid N] REF...`.
type PolicyCheckCmd struct {
	Path string   `help:"The program's executable (default: the program that runs this opx, as the daemon would judge it)." placeholder:"EXE"`
	PID  int      `help:"The program's pid, for pid rules." placeholder:"N"`
	Refs []string `arg:"" name:"ref" help:"Refs to check."`
}

// Run evaluates the policy file as the daemon does and prints one line per
// ref; it exits 1 when any ref is denied.
func (c *PolicyCheckCmd) Run(env *Env) error {
	store, err := policy.Load(env.Paths.PolicyFile, nil)
	if err != nil {
		return &Error{Message: err.Error(), Hint: "fix the file; a running daemon keeps its last good policy meanwhile"}
	}
	req := policy.Requester{PID: c.PID, Path: c.Path}
	if req.Path == "" {
		ppid := os.Getppid()
		path, err := daemon.ProcessPath(ppid)
		if err != nil {
			return &Error{Message: fmt.Sprintf("find the program that runs opx: %v", err), Hint: "pass --path EXE"}
		}
		req.Path = path
		if req.PID == 0 {
			req.PID = ppid
		}
	}
	p := store.Current()
	if p == nil {
		fmt.Fprintf(env.Stdout, "no policy file at %s: every program of yours may read every ref\n", store.Path())
		return nil
	}
	denied := false
	for _, ref := range c.Refs {
		d := p.Decide(req, ref, daemon.SignedCheck())
		verdict := "ALLOW"
		if !d.Allow {
			verdict, denied = "DENY", true
		}
		detail := ""
		if d.Rule >= 0 {
			r := p.Allow[d.Rule]
			var who []string
			if r.Path != "" {
				who = append(who, "path "+r.Path)
			}
			if r.PathSHA256 != "" {
				who = append(who, "path_sha256 "+r.PathSHA256[:12]+"...")
			}
			if r.PID != 0 {
				who = append(who, fmt.Sprintf("pid %d", r.PID))
			}
			detail = fmt.Sprintf(" [%s; refs %s]", strings.Join(who, ", "), strings.Join(r.Refs, " "))
		}
		fmt.Fprintf(env.Stdout, "%s %s for %s: %s%s\n", verdict, ref, req.Path, d.Reason, detail)
	}
	if denied {
		return &ExitError{Code: 1}
	}
	return nil
}
