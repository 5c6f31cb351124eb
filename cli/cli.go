package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/client"
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
func (f *Freshness) query(g *Globals) (client.Query, error) {
	q := client.Query{Account: g.Account, OPIdentity: api.OPIdentityFromEnv(os.Getenv)}
	switch {
	case f.NoCache:
		zero := 0.0
		q.MaxAge = &zero
	case f.MaxAge != nil:
		if *f.MaxAge < 0 {
			return q, &client.Error{Message: fmt.Sprintf("--max-age %v: want 0 or more", *f.MaxAge)}
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
	// Options are what Client was made with: a command that needs another
	// client (one that starts a daemon with flags, or records how the
	// daemon differs) makes it from them.
	Options client.Options
	// Client reaches the daemon, starting it if allowed.
	Client *client.Client
	// NoStart reaches the daemon only if it is already running.
	NoStart *client.Client
	// waiting is the question the daemon said the request waits on ("" for
	// none): set by Options.Waiting, shown by progress.
	waiting *atomic.Pointer[string]
}

// approval is the id of the question the daemon said the request waits
// on, or "".
func (e *Env) approval() string {
	if e.waiting == nil {
		return ""
	}
	if p := e.waiting.Load(); p != nil {
		return *p
	}
	return ""
}

// onWaiting is Options.Waiting: it keeps the question's id for the
// progress line, and, when stderr is not a terminal (a script, a log),
// says so once on stderr, so that a wait is never silent.
func onWaiting(waiting *atomic.Pointer[string], stderr *os.File) func(string) {
	var once sync.Once
	return func(what string) {
		id, ok := strings.CutPrefix(what, "approval ")
		if !ok {
			return
		}
		waiting.Store(&id)
		if os.Getenv("OPX_QUIET") != "1" && !term.IsTerminal(int(stderr.Fd())) {
			once.Do(func() {
				fmt.Fprintf(stderr, "opx: waiting for approval (question %s): answer with opx approve in another terminal\n", Printable(id))
			})
		}
	}
}

// NewEnv returns the environment of the opx process itself. beforeRequest,
// if not nil, is called once, just before the first request to the daemon.
func NewEnv(paths xdg.Paths, beforeRequest func(), expect *client.Expectation) *Env {
	opts := client.Options{
		Expect:        expect,
		Strict:        os.Getenv("OPX_STRICT") == "1",
		BeforeRequest: beforeRequest,
		Paths:         paths,
		Autostart:     os.Getenv("OPX_AUTOSTART") != "0",
		DaemonPath:    cmp.Or(os.Getenv("OPX_AUTHD_PATH"), executable()),
		Warn: func(msg string) {
			fmt.Fprintf(os.Stderr, "opx: warning: %s\n", Printable(msg))
		},
		WarnOnce: &sync.Once{},
	}
	waiting := &atomic.Pointer[string]{}
	opts.Waiting = onWaiting(waiting, os.Stderr)
	noStart := opts
	noStart.Autostart = false
	noStart.Expect = nil // status, lock, stop: they show or end the daemon as it is
	return &Env{
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Paths:   paths,
		Options: opts,
		Client:  client.New(opts),
		NoStart: client.New(noStart),
		waiting: waiting,
	}
}

// NewQuietEnv is an Env that says nothing on stderr but errors, for opx
// run as op, vault or bao: op's callers (op-js among them) take any stderr
// output for a failure. A daemon whose settings differ from expect
// (another backend, op, TTL or version) is an error (Strict), which sends
// the call to the real program.
func NewQuietEnv(paths xdg.Paths, expect *client.Expectation) *Env {
	opts := client.Options{
		Paths:      paths,
		Autostart:  os.Getenv("OPX_AUTOSTART") != "0",
		DaemonPath: cmp.Or(os.Getenv("OPX_AUTHD_PATH"), executable()),
		Expect:     expect,
		Strict:     expect != nil,
	}
	noStart := opts
	noStart.Autostart = false
	return &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: io.Discard, Paths: paths, Quiet: true,
		Options: opts, Client: client.New(opts), NoStart: client.New(noStart)}
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
	if !client.IsCode(err, api.CodeSessionLocked) || !e.interactive() {
		return err
	}
	fmt.Fprint(e.Stderr, "opx: the session is locked. Unlock it now? [Y/n] ")
	var answer string
	fmt.Fscanln(e.Stdin, &answer)
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "" && a != "y" && a != "yes" {
		return err
	}
	if _, uerr := e.Client.Unlock(ctx); uerr != nil {
		return uerr
	}
	return f()
}

// reads reads refs through the daemon, saying on a terminal what it waits
// for, and offering to unlock a locked session. Each ref's Result says
// what it got; the error is for the reads as a whole.
func (e *Env) reads(ctx context.Context, q client.Query, refs []string) (map[string]*client.Result, error) {
	done := e.progress(waitingFor(refs))
	defer done()
	var res map[string]*client.Result
	err := e.retryUnlocked(ctx, func() error {
		var err error
		res, err = e.Client.Reads(ctx, q, refs)
		return err
	})
	return res, err
}

// failures prints an error line for each item whose ref (refOf(item))
// failed in res, naming it by label(item), then one hint for them all. It
// reports whether any failed.
func failures(w io.Writer, items []string, res map[string]*client.Result, refOf, label func(item string) string) bool {
	failed := false
	hint := ""
	for _, item := range items {
		ref := refOf(item)
		e := res[ref].Err
		if e == nil {
			continue
		}
		failed = true
		fmt.Fprintf(w, "opx: error: %s: %s (%s)\n", label(item), Printable(TrimRefPrefix(e.Message, ref)), Printable(e.Code))
		hint = cmp.Or(hint, e.Hint)
	}
	if hint != "" {
		fmt.Fprintf(w, "opx: hint: %s\n", Printable(hint))
	}
	return failed
}

// forget clears the values of res.
func forget(res map[string]*client.Result) {
	for _, r := range res {
		clear(r.Value)
	}
}

// ExitError ends the process with Code after the command printed its own
// messages.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Starting returns a client that starts the daemon, when none runs, with
// args as its flags, and does not compare the running daemon's settings
// with this environment's: the flags given are the point.
func (e *Env) Starting(args []string) *client.Client {
	opts := e.Options
	opts.Autostart = true
	opts.DaemonArgs = args
	opts.Expect = nil
	return client.New(opts)
}

// executable is opx's own program, links resolved, for the daemon it
// starts; "" when it cannot be found (the client then looks for opx on
// PATH).
func executable() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return exe
}

// plural is one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
