package client

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/xdg"
)

// Globals are the flags every client command takes, before or after the
// subcommand.
type Globals struct {
	Account string `help:"1Password account (shorthand, email or ID) to read with; part of the cache key." env:"OPX_ACCOUNT,OP_ACCOUNT" placeholder:"ACCOUNT"`
}

// Freshness is the flags of the commands that read: a value may be asked
// fresher than the daemon's cache keeps it.
type Freshness struct {
	MaxAge  *time.Duration `name:"max-age" help:"Fetch a value again when the cached one is older than DURATION (e.g. 30s)." placeholder:"DURATION"`
	NoCache bool           `name:"no-cache" help:"Fetch every value again (--max-age 0)."`
}

// query is the request's account and freshness.
func (f *Freshness) query(g *Globals) (Query, error) {
	q := Query{Account: g.Account}
	switch {
	case f.NoCache:
		zero := 0.0
		q.MaxAge = &zero
	case f.MaxAge != nil:
		if *f.MaxAge < 0 {
			return q, &Error{Message: fmt.Sprintf("--max-age %v: want 0 or more", *f.MaxAge)}
		}
		s := f.MaxAge.Seconds()
		q.MaxAge = &s
	}
	return q, nil
}

// Env is what the client commands run with: the terminal streams and a way
// to reach the daemon.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Paths          xdg.Paths
	// Version is this opx's version (the daemon's is compared with it).
	Version string
	// Quiet keeps stderr for errors alone (no progress line): opx run as
	// op, whose callers take any stderr output for a failure.
	Quiet bool
	// Client reaches the daemon, starting it if allowed.
	Client *Client
	// NoStart reaches the daemon only if it is already running.
	NoStart *Client
}

// NewEnv returns the environment of the opx process itself. beforeRequest,
// if not nil, is called once, just before the first request to the daemon.
func NewEnv(paths xdg.Paths, beforeRequest func(), expect *Expectation) *Env {
	opts := Options{
		Expect:        expect,
		Strict:        os.Getenv("OPX_STRICT") == "1",
		BeforeRequest: beforeRequest,
		Paths:         paths,
		Autostart:     os.Getenv("OPX_AUTOSTART") != "0",
		DaemonPath:    os.Getenv("OPX_AUTHD_PATH"),
		Warn: func(msg string) {
			fmt.Fprintf(os.Stderr, "opx: warning: %s\n", Printable(msg))
		},
		WarnOnce: &sync.Once{},
	}
	noStart := opts
	noStart.Autostart = false
	noStart.Expect = nil // status, lock, stop: they show or end the daemon as it is
	return &Env{
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Paths:   paths,
		Client:  New(opts),
		NoStart: New(noStart),
	}
}

// interactive reports whether the user can answer a question on the terminal.
func (e *Env) interactive() bool {
	in, ok := e.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return false
	}
	errf, ok := e.Stderr.(*os.File)
	return ok && term.IsTerminal(int(errf.Fd()))
}

// retryUnlocked runs f; when the session is locked and the user is at a
// terminal, it offers to unlock and runs f once more.
func (e *Env) retryUnlocked(ctx context.Context, f func() error) error {
	err := f()
	if !IsCode(err, api.CodeSessionLocked) || !e.interactive() {
		return err
	}
	fmt.Fprint(e.Stderr, "opx: the session is locked. Unlock it now? [Y/n] ")
	var answer string
	fmt.Fscanln(e.Stdin, &answer)
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "" && a != "y" && a != "yes" {
		return err
	}
	res, uerr := e.Client.Unlock(ctx)
	if uerr != nil {
		return uerr
	}
	if !res.Success {
		return &Error{Code: api.CodeSessionLocked, Message: res.Message}
	}
	return f()
}

// ExitError ends the process with Code after the command printed its own
// messages.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }
